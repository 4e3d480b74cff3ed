// Products have no pictures here: a coloured tile stands in, its hue from the product's top
// category (a category keeps its colour family), shifted a little and lightened by the product id.

function hash(text) {
  let h = 2166136261;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 16777619);
  }
  return h >>> 0;
}

export function placeholder(product, size = "") {
  const tile = document.createElement("div");
  tile.className = `tile ${size}`.trim();
  tile.setAttribute("aria-hidden", "true");
  const top = (product.category || "").split(">")[0].trim().toLowerCase();
  const own = hash(product.id);
  const hue = (hash(top || product.id) % 360) + (own % 50) - 25;
  const light = 36 + ((own >>> 8) % 22);
  tile.style.background = `linear-gradient(135deg, hsl(${hue} 62% ${light}%), hsl(${(hue + 40) % 360} 58% ${light + 14}%))`;
  tile.textContent = (product.brand || product.title || "?").trim().charAt(0).toUpperCase();
  return tile;
}
