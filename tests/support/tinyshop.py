"""A tiny hand-made shop (30 products, events, judgments) for tests that need known answers."""

from __future__ import annotations

from shoprec.types import Event, Judgment, Product

_ROWS = [
    ("Voltmark 20V Cordless Drill Driver Kit", "Voltmark", "Tools > Power Tools > Drills", 99.0),
    ("Ironridge Hammer Drill 1/2 in. Corded", "Ironridge", "Tools > Power Tools > Drills", 149.0),
    ("Voltmark Brushless Impact Driver 20V", "Voltmark", "Tools > Power Tools > Drivers", 129.0),
    ("Ironridge Claw Hammer 16 oz Fiberglass", "Ironridge", "Tools > Hand Tools > Hammers", 19.5),
    ("Ironridge Framing Hammer 22 oz", "Ironridge", "Tools > Hand Tools > Hammers", 27.0),
    ("Sparkline 25 ft. Tape Measure", "Sparkline", "Tools > Hand Tools > Measuring", 12.0),
    ("Comfy Leather Sofa 3-Seat Brown", "Comfy", "Furniture > Living Room > Sofas", 899.0),
    ("Comfy Fabric Couch Grey", "Comfy", "Furniture > Living Room > Sofas", 649.0),
    ("Oakhaus Coffee Table Walnut", "Oakhaus", "Furniture > Living Room > Tables", 249.0),
    ("Aqua Pull-Down Kitchen Faucet Chrome", "Aqua", "Plumbing > Faucets > Kitchen", 129.0),
    ("Aqua Bathroom Sink Faucet Nickel", "Aqua", "Plumbing > Faucets > Bathroom", 79.0),
    ("Flowline PVC Pipe 1/2 in. x 10 ft.", "Flowline", "Plumbing > Pipes", 6.5),
    ("Brightway LED Light Bulb 60W Equivalent 4-Pack", "Brightway", "Lighting > Bulbs", 9.99),
    ("Brightway Ceiling Fan with Light 52 in.", "Brightway", "Lighting > Fans", 179.0),
    ("Greenleaf Garden Hose 50 ft.", "Greenleaf", "Garden > Watering", 34.0),
    ("Greenleaf Cordless Leaf Blower 40V", "Greenleaf", "Garden > Power Equipment", 159.0),
    ("Greenleaf Push Lawn Mower 21 in.", "Greenleaf", "Garden > Power Equipment", 299.0),
    ("Paintpro Interior Paint Eggshell White 1 gal.", "Paintpro", "Paint > Interior Paint", 38.0),
    ("Paintpro Exterior Paint Satin 1 gal.", "Paintpro", "Paint > Exterior Paint", 44.0),
    ("Paintpro 9 in. Paint Roller Kit", "Paintpro", "Paint > Supplies", 15.0),
    ("Coolbreeze Window Air Conditioner 8000 BTU", "Coolbreeze", "Appliances > Cooling", 329.0),
    ("Coolbreeze Dehumidifier 35 pt.", "Coolbreeze", "Appliances > Cooling", 219.0),
    (
        "Frostline Refrigerator French Door Stainless",
        "Frostline",
        "Appliances > Refrigerators",
        1899.0,
    ),
    ("Frostline Dishwasher Stainless Steel", "Frostline", "Appliances > Dishwashers", 649.0),
    (
        "Voltmark 无线电钻 Cordless Drill (Chinese edition)",
        "Voltmark",
        "Tools > Power Tools > Drills",
        89.0,
    ),
    ("Safelock Keyless Entry Door Lock", "Safelock", "Hardware > Locks", 119.0),
    ("Safelock Deadbolt Satin Nickel", "Safelock", "Hardware > Locks", 29.0),
    ("Fixall Wood Screws #8 x 1-1/4 in. 100-Pack", "Fixall", "Hardware > Fasteners", 7.0),
    ("Fixall Drywall Anchors 50-Pack", "Fixall", "Hardware > Fasteners", 6.0),
    ("Trashmaster 13 gal. Trash Can Stainless", "Trashmaster", "Kitchen > Storage", 59.0),
]


def tiny_products() -> list[Product]:
    return [
        Product(
            id=f"T{i:03d}",
            title=t,
            description=f"{t}. Quality {c.split('>')[-1].strip().lower()} from {b}.",
            brand=b,
            category=c,
            price=p,
            in_stock=i % 7 != 3,
            attributes={"color": "black"} if i % 2 else {},
        )
        for i, (t, b, c, p) in enumerate(_ROWS)
    ]


def tiny_events() -> list[Event]:
    """Clicks and purchases that teach the ranker: every query leads to its products."""
    queries = {
        "cordless drill": ["T000", "T024"],
        "drill": ["T000", "T001", "T024"],
        "hammer": ["T003", "T004"],
        "sofa": ["T006", "T007"],
        "couch": ["T007", "T006"],
        "kitchen faucet": ["T009"],
        "faucet": ["T009", "T010"],
        "paint": ["T017", "T018"],
        "light bulb": ["T012"],
        "lawn mower": ["T016"],
        "door lock": ["T025", "T026"],
        "screws": ["T027"],
        "trash can": ["T029"],
        "air conditioner": ["T020"],
        "refrigerator": ["T022"],
        "garden hose": ["T014"],
    }
    events: list[Event] = []
    ts = 1_700_000_000.0
    for u in range(6):
        for q, items in queries.items():
            for j, item in enumerate(items):
                ts += 7
                kind = "purchase" if (u + j) % 4 == 0 else "click"
                events.append(Event(f"U{u}", item, kind, ts, q))  # type: ignore[arg-type]
    return events


def tiny_judgments() -> list[Judgment]:
    return [
        Judgment("cordless drill", "T000", 3),
        Judgment("cordless drill", "T024", 3),
        Judgment("cordless drill", "T001", 2),
        Judgment("couch", "T007", 3),
        Judgment("couch", "T006", 3),
        Judgment("kitchen tap", "T009", 3),
        Judgment("kitchen tap", "T010", 2),
        Judgment("hammer", "T003", 3),
        Judgment("hammer", "T004", 3),
        Judgment("nothing relevant", "T000", 1),
    ]
