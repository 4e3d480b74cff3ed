"""Pure core: stdlib and numpy only. No I/O, no asyncio."""
