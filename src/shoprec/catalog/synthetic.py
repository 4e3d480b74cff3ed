"""The deterministic synthetic storefront: a seeded home-improvement catalog, shoppers
with latent tastes, their search and browse sessions, and graded relevance judgments.

Everything comes from one seeded :class:`numpy.random.Generator`, so the same arguments
give equal objects and byte-identical files. The catalog is built from a hand-written
taxonomy (departments -> leaf categories -> product types) with invented brand names.
Titles share words across types ("drill" in *cordless drill*, *hammer drill*, *drill bit
set*) and shoppers use synonyms the titles may not ("couch" for a sofa, "tap" for a faucet),
typos, prefixes and shuffled words, so lexical matching alone is not enough.

Judgments grade catalog products for the shoppers' own noisy query strings, on 0..3:

    3  the intended product type, with the requested attribute (colour, brand or size) if any
    2  the intended product type without the requested attribute
    1  another type in the same leaf category (a sample of at most 20 per query)
    0  anything else (not listed)
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import numpy.typing as npt
from tqdm import tqdm

from shoprec.atomicio import build_folder
from shoprec.catalog.loaders import write_events_csv, write_judgments_csv, write_products_jsonl
from shoprec.errors import ConfigError, DataError
from shoprec.types import Event, Judgment, Product

__all__ = ["Storefront", "UserProfile", "generate_storefront", "write_storefront"]

IntArray = npt.NDArray[np.int64]

#: Share of search sessions whose distinct queries get judged: 20k sessions -> 3,000 queries.
JUDGED_QUERIES_PER_SESSION = 0.15
TRAIN_SHARE = 0.7
START_TIMESTAMP = 1_700_000_000


@dataclass(frozen=True, slots=True)
class UserProfile:
    """A shopper's latent tastes: weights over brands and leaf categories (each summing to
    about 1) and a price sensitivity in [0, 1] (1 = strongly prefers cheaper products)."""

    id: str
    brand_affinity: Mapping[str, float]
    category_affinity: Mapping[str, float]
    price_sensitivity: float


@dataclass(frozen=True, slots=True)
class Storefront:
    """A generated storefront. ``judgments`` is the training split, ``test_judgments`` the
    held-out one; the two share no query."""

    products: list[Product]
    users: list[UserProfile]
    events: list[Event]
    judgments: list[Judgment]
    test_judgments: list[Judgment]
    seed: int


# ---------------------------------------------------------------------------- taxonomy
#
# A department block starts with "@Name", then "brands:", an optional "color:" or
# "finish:" line, an optional "material:" line and "uses:" (phrases for descriptions).
# Each product type is one line:
#   leaf | query key | title names (/) | query-only synonyms (,) | Chinese | median price |
#   size pool | features (a "+" marks a suffix) [| colour override: "key: a, b" or "-"]

_SIZES: dict[str, tuple[str, tuple[str, ...]]] = {
    "volt": ("voltage", ("12V", "18V", "20V", "40V")),
    "blade": ("blade_size", ("6-1/2 in.", "7-1/4 in.", "10 in.", "12 in.")),
    "pcs": ("pieces", ("10-Piece", "20-Piece", "40-Piece", "100-Piece")),
    "in": ("size", ("12 in.", "18 in.", "24 in.", "36 in.")),
    "wide": ("width", ("24 in.", "30 in.", "36 in.", "48 in.")),
    "len": ("length", ("6 ft.", "25 ft.", "50 ft.", "100 ft.")),
    "ft": ("height", ("4 ft.", "6 ft.", "8 ft.", "10 ft.")),
    "lad": ("height", ("16 ft.", "20 ft.", "24 ft.", "28 ft.")),
    "deck": ("deck_width", ("21 in.", "30 in.", "42 in.", "54 in.")),
    "burner": ("burners", ("2-Burner", "3-Burner", "4-Burner", "5-Burner")),
    "set": ("pieces", ("3-Piece", "5-Piece", "7-Piece", "9-Piece")),
    "pack": ("pack_size", ("2-Pack", "4-Pack", "6-Pack", "12-Pack")),
    "cuftwb": ("capacity", ("4 cu. ft.", "6 cu. ft.", "8 cu. ft.")),
    "seat": ("seats", ("2-Seat", "3-Seat", "4-Seat")),
    "tv": ("tv_size", ("for TVs up to 55 in.", "for TVs up to 65 in.", "for TVs up to 75 in.")),
    "bed": ("size", ("Twin", "Full", "Queen", "King")),
    "shelf": ("shelves", ("3-Shelf", "4-Shelf", "5-Shelf")),
    "dining": ("seats", ("Seats 4", "Seats 6", "Seats 8")),
    "rug": ("size", ("2 ft. x 3 ft.", "5 ft. x 7 ft.", "8 ft. x 10 ft.", "9 ft. x 12 ft.")),
    "runner": ("size", ("2 ft. x 6 ft.", "2 ft. x 8 ft.", "2 ft. x 10 ft.")),
    "mat": ("size", ("18 in. x 30 in.", "24 in. x 36 in.", "20 in. x 32 in.")),
    "curtain": ("length", ("63 in.", "84 in.", "95 in.", "108 in.")),
    "rod": ("length", ("28-48 in.", "36-72 in.", "72-144 in.")),
    "art": ("size", ("16 in. x 20 in.", "24 in. x 36 in.", "30 in. x 40 in.")),
    "frame": ("size", ("4 in. x 6 in.", "5 in. x 7 in.", "8 in. x 10 in.", "11 in. x 14 in.")),
    "pil": ("size", ("18 in. x 18 in.", "20 in. x 20 in.", "12 in. x 20 in.")),
    "towel": ("pieces", ("2-Piece", "4-Piece", "6-Piece")),
    "sink": ("width", ("30 in.", "33 in.", "36 in.")),
    "cuft": ("capacity", ("18 cu. ft.", "22 cu. ft.", "26 cu. ft.", "28 cu. ft.")),
    "minicu": ("capacity", ("1.7 cu. ft.", "3.1 cu. ft.", "4.4 cu. ft.")),
    "rangew": ("width", ("24 in.", "30 in.", "36 in.")),
    "micro": ("capacity", ("0.9 cu. ft.", "1.2 cu. ft.", "1.7 cu. ft.", "2.2 cu. ft.")),
    "cup": ("capacity", ("4-Cup", "8-Cup", "12-Cup", "14-Cup")),
    "qt": ("capacity", ("2 qt.", "4 qt.", "6 qt.", "8 qt.")),
    "pan": ("size", ("8 in.", "10 in.", "12 in.")),
    "gal": ("capacity", ("13 Gal.", "30 Gal.", "45 Gal.")),
    "showerhead": ("size", ("6 in.", "8 in.", "10 in.", "12 in.")),
    "shape": ("shape", ("Round", "Elongated")),
    "vanity": ("width", ("24 in.", "30 in.", "36 in.", "48 in.", "60 in.")),
    "tub": ("length", ("54 in.", "60 in.", "67 in.")),
    "light": ("lights", ("3-Light", "5-Light", "6-Light", "8-Light")),
    "fan": ("blade_span", ("44 in.", "52 in.", "60 in.")),
    "watt": ("wattage", ("40W Equivalent", "60W Equivalent", "100W Equivalent")),
    "outlet": ("outlets", ("6-Outlet", "8-Outlet", "12-Outlet")),
    "box": ("count", ("100-Count", "350-Count", "1 lb. Box", "5 lb. Box")),
    "function": ("function", ("Privacy", "Passage", "Keyed Entry", "Dummy")),
    "hinge": ("size", ("3 in.", "3-1/2 in.", "4 in.")),
    "bracket": ("size", ("4 in.", "6 in.", "8 in.", "10 in.")),
    "dim": (
        "dimensions",
        ("2 in. x 4 in. x 8 ft.", "2 in. x 6 in. x 10 ft.", "1 in. x 6 in. x 8 ft."),
    ),
    "thick": ("thickness", ("1/4 in.", "1/2 in.", "5/8 in.", "3/4 in.")),
    "bucket": ("size", ("1 qt.", "1 gal.", "4.5 gal.")),
    "rval": ("r_value", ("R-13", "R-19", "R-30")),
    "lb": ("weight", ("40 lb.", "50 lb.", "60 lb.", "80 lb.")),
    "tile": ("size", ("12 in. x 24 in.", "24 in. x 24 in.", "6 in. x 36 in.")),
    "sqft": ("coverage", ("18 sq. ft.", "20 sq. ft.", "24 sq. ft.")),
    "paint": ("size", ("1 qt.", "1 gal.", "5 gal.")),
    "oz": ("size", ("11 oz.", "12 oz.", "15 oz.")),
    "brush": ("width", ("1 in.", "2 in.", "2-1/2 in.", "3 in.")),
    "roller": ("width", ("4 in.", "9 in.", "18 in.")),
    "tape": ("width", ("0.94 in.", "1.41 in.", "1.88 in.")),
    "tank": ("capacity", ("40 Gal.", "50 Gal.", "80 Gal.")),
    "pipe": ("size", ("1/2 in. x 10 ft.", "3/4 in. x 10 ft.", "1 in. x 10 ft.")),
    "fitting": ("size", ("1/2 in.", "3/4 in.", "1 in.")),
    "stage": ("stages", ("1-Stage", "2-Stage", "3-Stage")),
    "btu": ("btu", ("5,000 BTU", "8,000 BTU", "10,000 BTU", "12,000 BTU")),
    "tower": ("height", ("36 in.", "42 in.", "48 in.")),
    "heat": ("wattage", ("750W", "1500W")),
    "room": ("coverage", ("up to 300 sq. ft.", "up to 500 sq. ft.", "up to 1000 sq. ft.")),
    "pint": ("capacity", ("22 Pint", "35 Pint", "50 Pint")),
    "shopgal": ("capacity", ("5 Gal.", "12 Gal.", "16 Gal.")),
    "broom": ("width", ("18 in.", "24 in.", "36 in.")),
    "tote": ("capacity", ("18 Gal.", "27 Gal.", "40 Qt.")),
    "closet": ("width", ("4 ft. to 6 ft.", "5 ft. to 8 ft.", "6 ft. to 10 ft.")),
    "hanger": ("pack_size", ("20-Pack", "50-Pack", "100-Pack")),
}

# One product type a line reads best as a table, so this file allows long lines.
# ruff: noqa: E501
_TAXONOMY = """
@Tools
brands: Voltmark, Ironridge, Torqwell, Steelhawk, Brightforge, Granitecore
color: Black, Red, Yellow, Blue, Orange, Gray, Green
material: Steel, Aluminum, Fiberglass, Chrome Vanadium Steel
uses: drilling, driving and everyday repairs; jobsite work; weekend projects around the house
Power Tools > Drills | cordless drill | Cordless Drill Driver / Cordless Drill / Cordless Drill/Driver | battery drill, drill driver | 无线电钻 | 119 | volt | Brushless, Compact, +Kit, +with 2 Batteries
Power Tools > Drills | hammer drill | Hammer Drill / Cordless Hammer Drill | masonry drill, percussion drill | 冲击钻 | 149 | volt | Brushless, Heavy Duty, +Kit
Power Tools > Drills | impact driver | Impact Driver / Cordless Impact Driver | impact drill, impact gun | 冲击起子 | 129 | volt | Brushless, 3-Speed, +Kit
Power Tools > Saws | circular saw | Circular Saw / Cordless Circular Saw | skill saw, buzz saw | 圆锯 | 139 | blade | Brushless, Worm Drive, +with Blade
Power Tools > Saws | miter saw | Compound Miter Saw / Sliding Miter Saw | mitre saw, chop saw | 斜切锯 | 299 | blade | Dual-Bevel, Sliding, +with Laser
Power Tools > Saws | reciprocating saw | Reciprocating Saw / Cordless Reciprocating Saw | recip saw, demolition saw | 往复锯 | 129 | volt | Variable Speed, Compact, +Kit
Power Tools > Saws | jigsaw | Jigsaw / Jig Saw / Orbital Jigsaw | scroll saw, sabre saw | 曲线锯 | 89 | | Variable Speed, Keyless, +with Case
Power Tools > Sanders | orbital sander | Random Orbit Sander / Orbital Sander | palm sander, finishing sander | 砂光机 | 69 | | Variable Speed, Dustless, +with Dust Bag
Power Tools > Sanders | belt sander | Belt Sander | belt grinder | 带式砂光机 | 99 | | Heavy Duty, Corded, +with Dust Bag
Power Tools > Grinders | angle grinder | Angle Grinder / Cordless Angle Grinder | disc grinder, cut off tool | 角磨机 | 89 | volt | Brushless, Paddle Switch, +Kit
Power Tools > Grinders | bench grinder | Bench Grinder | grinding wheel | 台式砂轮机 | 119 | | Variable Speed, Heavy Duty, +with Work Light
Hand Tools > Hammers | claw hammer | Claw Hammer / Framing Hammer | carpenter hammer, nail hammer | 羊角锤 | 24 | | Fiberglass Handle, Steel, +16 oz.
Hand Tools > Hammers | sledgehammer | Sledgehammer / Sledge Hammer | maul, lump hammer | 大锤 | 44 | | Fiberglass Handle, Heavy Duty, +10 lb.
Hand Tools > Hammers | rubber mallet | Rubber Mallet / Mallet | soft hammer | 橡胶锤 | 14 | | Double-Faced, Non-Marring, +24 oz.
Hand Tools > Screwdrivers | screwdriver set | Screwdriver Set / Multi-Bit Screwdriver | screw driver kit | 螺丝刀套装 | 29 | pcs | Magnetic, Cushion Grip, +with Case
Hand Tools > Screwdrivers | precision screwdriver set | Precision Screwdriver Set / Electronics Screwdriver Kit | jeweler screwdriver, mini screwdriver | 精密螺丝刀 | 19 | pcs | Magnetic, Ratcheting, +with Case
Hand Tools > Wrenches | adjustable wrench | Adjustable Wrench | crescent wrench, spanner | 活动扳手 | 19 | in | Chrome Vanadium, Wide Jaw, +Set
Hand Tools > Wrenches | socket set | Socket Set / Mechanics Tool Set | ratchet set, socket wrench set | 套筒扳手套装 | 79 | pcs | SAE and Metric, Chrome, +with Case
Hand Tools > Wrenches | pipe wrench | Pipe Wrench | plumber wrench, stillson | 管钳 | 34 | in | Cast Iron, Heavy Duty, +Set
Hand Tools > Pliers | needle nose pliers | Needle Nose Pliers / Long Nose Pliers | long nose pliers | 尖嘴钳 | 16 | | Cushion Grip, Bent Nose, +Set
Hand Tools > Pliers | locking pliers | Locking Pliers | vise grips, mole grips | 大力钳 | 22 | | Curved Jaw, Quick Release, +Set
Tool Storage | tool box | Tool Box / Toolbox / Portable Tool Box | toolbox organizer | 工具箱 | 39 | in | Portable, Stackable, +with Tray
Tool Storage | tool chest | Rolling Tool Chest / Tool Cabinet / Tool Chest Combo | rolling tool cabinet, mechanic chest | 工具柜 | 399 | wide | 5-Drawer, Ball-Bearing, +with Casters
Tool Storage | tool bag | Tool Bag / Tool Tote | tool pouch | 工具包 | 34 | in | Heavy Duty, Wide Mouth, +with Shoulder Strap
Measuring Tools | tape measure | Tape Measure / Measuring Tape | measure tape, tape rule | 卷尺 | 14 | len | Magnetic, Auto-Lock, +2-Pack
Measuring Tools | laser level | Laser Level / Cross Line Laser | laser line level | 激光水平仪 | 99 | | Self-Leveling, Green Beam, +with Tripod
Measuring Tools | spirit level | Box Level / Torpedo Level | bubble level | 水平尺 | 19 | in | Magnetic, Aluminum, +Set
Drill Bits & Blades | drill bit set | Drill Bit Set / Titanium Drill Bit Set | drill bits | 钻头套装 | 29 | pcs | Titanium, Cobalt, +with Case
Drill Bits & Blades | saw blade | Circular Saw Blade / Saw Blade | blade for circular saw | 锯片 | 24 | blade | Carbide-Tipped, Fine Finish, +2-Pack
Ladders | step ladder | Step Ladder / Stepladder | step stool, folding ladder | 人字梯 | 99 | ft | Aluminum, Fiberglass, +with Tool Tray
Ladders | extension ladder | Extension Ladder | telescoping ladder | 伸缩梯 | 249 | lad | Aluminum, Fiberglass, +Type IA

@Outdoors
brands: Greenvale, Thornbury, Meadowline, Fernwick, Rootstock, Sunhollow
color: Green, Black, Gray, Brown, Red, Blue, Beige, Orange
material: Steel, Aluminum, Resin, Wood, Polyester, Cast Iron
uses: lawn and garden care; backyard living; keeping the yard tidy
Lawn Mowers | push lawn mower | Gas Push Lawn Mower / Push Mower / Self-Propelled Lawn Mower | lawnmower, grass cutter | 手推式割草机 | 329 | deck | Self-Propelled, 3-in-1, +with Bagger
Lawn Mowers | cordless lawn mower | Cordless Lawn Mower / Battery Lawn Mower / Electric Lawn Mower | battery mower, electric mower | 电动割草机 | 399 | volt | Brushless, Self-Propelled, +Kit
Lawn Mowers | riding lawn mower | Riding Lawn Mower / Lawn Tractor / Zero-Turn Mower | ride on mower, garden tractor | 驾驶式割草机 | 2499 | deck | Hydrostatic, Zero-Turn, +with Mulch Kit
Trimmers & Blowers | string trimmer | String Trimmer / Cordless String Trimmer | weed eater, weed whacker, strimmer | 打草机 | 129 | volt | Straight Shaft, Brushless, +Kit
Trimmers & Blowers | leaf blower | Leaf Blower / Cordless Leaf Blower / Backpack Blower | blower, leaf vacuum | 吹叶机 | 149 | volt | Handheld, Brushless, +Kit
Trimmers & Blowers | hedge trimmer | Hedge Trimmer / Cordless Hedge Trimmer | hedge cutter, bush trimmer | 绿篱机 | 99 | volt | Dual-Action, Brushless, +Kit
Grills | gas grill | Propane Gas Grill / Gas Grill | bbq, barbecue, propane grill | 燃气烤炉 | 449 | burner | Stainless Steel, Side Burner, +with Cover
Grills | charcoal grill | Charcoal Grill / Kettle Grill | bbq grill, barbecue kettle | 炭烤炉 | 149 | in | Portable, Porcelain-Enameled, +with Ash Catcher
Grills | pellet smoker | Pellet Grill / Pellet Smoker / Wood Pellet Grill | smoker, pellet bbq | 颗粒烟熏炉 | 699 | | WiFi, Digital Controller, +with Cover
Patio Furniture | patio chair | Patio Chair / Outdoor Dining Chair / Adirondack Chair | lawn chair, garden chair, deck chair | 户外椅 | 89 | pack | Stackable, Wicker, +with Cushions
Patio Furniture | patio dining set | Patio Dining Set / Outdoor Dining Set | outdoor table set, garden furniture set | 户外餐桌椅 | 699 | set | Wicker, Aluminum, +with Cushions
Patio Furniture | patio umbrella | Patio Umbrella / Market Umbrella / Cantilever Umbrella | sun umbrella, parasol | 遮阳伞 | 119 | ft | Tilting, Solar LED, +with Base
Garden Tools | garden hose | Garden Hose / Expandable Garden Hose | water hose, hosepipe | 花园水管 | 39 | len | Kink-Free, Heavy Duty, +with Nozzle
Garden Tools | shovel | Round Point Shovel / Digging Shovel / Garden Spade | spade, digging tool | 铁锹 | 29 | | Fiberglass Handle, Steel, +with D-Grip
Garden Tools | rake | Leaf Rake / Bow Rake / Garden Rake | lawn rake | 耙子 | 24 | | Adjustable, Steel Tine, +with Long Handle
Garden Tools | wheelbarrow | Wheelbarrow / Garden Cart | barrow, yard cart | 手推车 | 129 | cuftwb | Steel, Poly, +with Flat-Free Tire
Planters | planter | Planter / Flower Pot / Plant Pot | plant pot, flowerpot | 花盆 | 29 | in | Self-Watering, Ceramic, +Set of 2
Planters | raised garden bed | Raised Garden Bed / Elevated Planter Box | garden box, planter box | 高架花床 | 119 | ft | Cedar, Galvanized Steel, +Kit
Outdoor Lighting | solar path light | Solar Path Light / Solar Pathway Light | garden lights, solar lights | 太阳能路灯 | 29 | pack | LED, Stainless Steel, +Set
Outdoor Lighting | string lights | Outdoor String Lights / Patio String Lights | fairy lights, bistro lights, patio lights | 灯串 | 39 | len | LED, Shatterproof, +with Edison Bulbs
Outdoor Lighting | flood light | LED Flood Light / Security Flood Light | security light, motion sensor light | 泛光灯 | 59 | | Motion Sensing, Dusk to Dawn, +2-Head

@Furniture
brands: Hartwell, Linden & Oak, Maplecrest, Oakhaven, Willowmere, Norrland
color: Gray, Beige, Navy, Brown, Black, White, Green, Cream, Charcoal, Blue
material: Solid Wood, Engineered Wood, Velvet, Linen, Faux Leather, Metal
uses: the living room; small apartments; everyday comfort
Living Room > Sofas | sofa | Sofa / Couch / Upholstered Sofa | couch, settee, davenport | 沙发 | 899 | seat | Mid-Century, Tufted, +with Pillows
Living Room > Sofas | sectional sofa | Sectional Sofa / L-Shaped Sectional / Modular Sectional | sectional couch, corner sofa | 转角沙发 | 1499 | | Reversible, Modular, +with Chaise
Living Room > Sofas | loveseat | Loveseat / Love Seat | small sofa, two seater couch | 双人沙发 | 599 | | Mid-Century, Tufted, +with Pillows
Living Room > Chairs | accent chair | Accent Chair / Armchair / Club Chair | arm chair, lounge chair | 扶手椅 | 249 | | Velvet, Swivel, +with Ottoman
Living Room > Chairs | recliner | Recliner / Recliner Chair / Power Recliner | reclining chair, reclining armchair | 躺椅 | 499 | | Power, Rocking, +with USB Port
Living Room > Tables | coffee table | Coffee Table / Cocktail Table | center table, cocktail table | 咖啡桌 | 199 | | Lift-Top, Round, +with Storage
Living Room > Tables | end table | End Table / Side Table / Accent Table | side table, sofa table | 边桌 | 99 | | Round, Nesting, +with Drawer
Living Room > TV Stands | tv stand | TV Stand / Media Console / Entertainment Center | television stand, tv cabinet, tv unit | 电视柜 | 249 | tv | Farmhouse, Mid-Century, +with Fireplace
Bedroom > Beds | bed frame | Platform Bed Frame / Bed Frame / Upholstered Bed | bed base, bedstead | 床架 | 299 | bed | Upholstered, Metal, +with Storage
Bedroom > Beds | headboard | Headboard / Upholstered Headboard | bed head | 床头板 | 149 | bed | Tufted, Wingback, +Only
Bedroom > Dressers | dresser | Dresser / Chest of Drawers / 6-Drawer Dresser | chest of drawers, bureau | 五斗柜 | 399 | | Double, Farmhouse, +with Mirror
Bedroom > Nightstands | nightstand | Nightstand / Bedside Table / Night Stand | bedside table, night table | 床头柜 | 129 | | 2-Drawer, Modern, +with Charging Station
Bedroom > Mattresses | mattress | Memory Foam Mattress / Hybrid Mattress / Innerspring Mattress | bed mattress, foam bed | 床垫 | 599 | bed | Medium Firm, Cooling Gel, +in a Box
Home Office > Desks | writing desk | Writing Desk / Computer Desk / Home Office Desk | computer table, study desk | 书桌 | 179 | wide | Modern, L-Shaped, +with Drawers
Home Office > Desks | standing desk | Standing Desk / Sit-Stand Desk / Electric Standing Desk | adjustable desk, height adjustable desk | 升降桌 | 349 | wide | Electric, Dual Motor, +with Memory Presets
Home Office > Office Chairs | office chair | Office Chair / Ergonomic Office Chair / Task Chair | desk chair, computer chair | 办公椅 | 199 | | Mesh, Ergonomic, +with Lumbar Support
Home Office > Office Chairs | gaming chair | Gaming Chair / Racing Style Gaming Chair | gamer chair | 电竞椅 | 229 | | Reclining, Racing Style, +with Footrest
Storage Furniture > Bookcases | bookcase | Bookcase / Bookshelf / Etagere Bookcase | book shelf, shelving unit | 书架 | 149 | shelf | Ladder, Industrial, +with Doors
Storage Furniture > Cabinets | storage cabinet | Storage Cabinet / Accent Cabinet / Pantry Cabinet | cupboard, armoire | 储物柜 | 229 | | 2-Door, Farmhouse, +with Adjustable Shelves
Dining Room | dining table | Dining Table / Kitchen Table / Extendable Dining Table | kitchen table, dinner table | 餐桌 | 449 | dining | Farmhouse, Round, +Set
Dining Room | dining chair | Dining Chair / Upholstered Dining Chair | kitchen chair | 餐椅 | 149 | pack | Upholstered, Cross-Back, +Set of 2

@Home Decor
brands: Aurelle, Hearthwood, Sablebrook, Juniper Lane, Calloway Home, Brightnest
color: White, Gray, Beige, Navy, Blue, Green, Ivory, Black, Pink, Gold
material: Cotton, Polyester, Wool, Jute, Velvet, Linen, Glass, Wood
uses: a cozy bedroom; refreshing a room; everyday living
Rugs | area rug | Area Rug / Indoor Area Rug / Shag Area Rug | carpet, rug | 地毯 | 149 | rug | Oriental, Washable, +with Non-Slip Backing
Rugs | runner rug | Runner Rug / Hallway Runner | hall runner, stair runner | 走廊地毯 | 59 | runner | Washable, Non-Slip, +Set
Rugs | door mat | Doormat / Door Mat / Welcome Mat | entrance mat, welcome mat | 门垫 | 24 | mat | Coir, Rubber, +Set of 2
Window Treatments | curtains | Curtain Panel / Blackout Curtains / Curtains | drapes, drapery, window curtains | 窗帘 | 39 | curtain | Blackout, Thermal, +2-Panel Set
Window Treatments | window blinds | Cordless Blinds / Mini Blinds / Roller Shade | window blinds, shades | 百叶窗 | 49 | wide | Cordless, Light Filtering, +Set
Window Treatments | curtain rod | Curtain Rod / Drapery Rod | curtain pole, drape rod | 窗帘杆 | 29 | rod | Adjustable, Double, +Set
Mirrors | wall mirror | Wall Mirror / Round Wall Mirror / Vanity Mirror | bathroom mirror, hanging mirror | 挂镜 | 99 | in | Round, Framed, +Set
Mirrors | floor mirror | Full Length Floor Mirror / Floor Mirror | full length mirror, standing mirror, cheval mirror | 落地镜 | 149 | | Arched, Full Length, +with Stand
Wall Art | canvas wall art | Canvas Wall Art / Framed Wall Art | painting, wall picture, artwork | 装饰画 | 69 | art | Abstract, Botanical, +Set of 3
Wall Art | picture frame | Picture Frame / Photo Frame / Gallery Frame | photo frame | 相框 | 19 | frame | Matted, Wood, +Set of 3
Bedding | comforter set | Comforter Set / Duvet Cover Set / Quilt Set | duvet, bedspread, quilt | 被子 | 89 | bed | Reversible, All-Season, +with Shams
Bedding | sheet set | Sheet Set / Bed Sheets / Microfiber Sheet Set | bed sheets, bedsheet, linens | 床单 | 49 | bed | Deep Pocket, Cotton, +4-Piece
Bedding | bed pillow | Bed Pillow / Memory Foam Pillow | sleeping pillow | 枕头 | 34 | pack | Cooling, Down Alternative, +2-Pack
Decorative Pillows & Throws | throw pillow | Throw Pillow / Decorative Pillow / Accent Pillow | cushion, sofa cushion | 抱枕 | 24 | pil | Velvet, Boho, +Set of 2
Decorative Pillows & Throws | throw blanket | Throw Blanket / Knit Throw | blanket, throw | 毛毯 | 39 | | Sherpa, Chunky Knit, +with Tassels
Bath Linens | bath towel | Bath Towel Set / Bath Towel | towels, bath sheet | 浴巾 | 34 | towel | Turkish Cotton, Quick-Dry, +Set
Bath Linens | bath mat | Bath Mat / Bath Rug | bathroom rug, shower mat | 浴室地垫 | 24 | mat | Memory Foam, Non-Slip, +Set of 2
Bath Linens | shower curtain | Shower Curtain / Fabric Shower Curtain | shower liner, bath curtain | 浴帘 | 24 | | Waterproof, Waffle Weave, +with Hooks

@Kitchen
brands: Copperleaf, Saltmarsh, Kestrel, Hearthstone, Culina, Brightwell
color: Black, White, Silver, Red, Gray, Copper, Blue
material: Stainless Steel, Cast Iron, Aluminum, Glass, Ceramic, Plastic
uses: everyday cooking; busy family kitchens; meal prep
Kitchen Faucets | kitchen faucet | Pull-Down Kitchen Faucet / Kitchen Faucet / Pull-Out Kitchen Faucet | kitchen tap, sink tap, mixer tap | 厨房水龙头 | 179 | | Touchless, Single-Handle, +with Sprayer | finish: Chrome, Stainless Steel, Matte Black, Brushed Nickel, Oil-Rubbed Bronze
Kitchen Sinks | kitchen sink | Undermount Kitchen Sink / Farmhouse Sink / Drop-In Kitchen Sink | sink basin, apron sink | 厨房水槽 | 299 | sink | Double Bowl, Single Bowl, +with Grid | color: Stainless Steel, White, Black, Gray
Refrigerators | refrigerator | French Door Refrigerator / Side-by-Side Refrigerator / Top Freezer Refrigerator | fridge, fridge freezer, icebox | 冰箱 | 1899 | cuft | Counter-Depth, Smart, +with Ice Maker | color: Stainless Steel, Black Stainless, White, Black
Refrigerators | mini fridge | Mini Fridge / Compact Refrigerator | dorm fridge, small fridge | 小冰箱 | 179 | minicu | Retro, 2-Door, +with Freezer
Ranges & Ovens | range | Electric Range / Gas Range / Induction Range | stove, cooker, oven | 灶台 | 999 | rangew | Convection, Self-Cleaning, +with Air Fry | color: Stainless Steel, Black Stainless, White, Black
Ranges & Ovens | microwave | Over-the-Range Microwave / Countertop Microwave | microwave oven, micro | 微波炉 | 199 | micro | Sensor Cooking, Compact, +with Turntable
Dishwashers | dishwasher | Built-In Dishwasher / Front Control Dishwasher | dish washer | 洗碗机 | 749 | | Quiet, Stainless Tub, +with Third Rack | color: Stainless Steel, Black Stainless, White, Black
Small Appliances | coffee maker | Coffee Maker / Drip Coffee Maker / Single Serve Coffee Maker | coffee machine, coffee brewer | 咖啡机 | 79 | cup | Programmable, Thermal, +with Grinder
Small Appliances | blender | Blender / Countertop Blender / Personal Blender | smoothie maker, liquidizer | 搅拌机 | 89 | | High-Speed, Professional, +with To-Go Cups
Small Appliances | toaster | Toaster / 2-Slice Toaster / Toaster Oven | bread toaster | 烤面包机 | 49 | | Wide Slot, Stainless Steel, +with Bagel Setting
Small Appliances | air fryer | Air Fryer / Air Fryer Oven | airfryer, oil free fryer | 空气炸锅 | 99 | qt | Digital, Dual Basket, +with Rotisserie
Cookware | frying pan | Nonstick Frying Pan / Skillet / Fry Pan | fry pan, saute pan | 煎锅 | 39 | pan | Nonstick, Cast Iron, +with Lid
Cookware | cookware set | Cookware Set / Pots and Pans Set | pots and pans, pan set | 锅具套装 | 149 | pcs | Nonstick, Stainless Steel, +Induction Compatible
Cookware | dutch oven | Dutch Oven / Enameled Dutch Oven | casserole pot, stew pot | 铸铁锅 | 79 | qt | Enameled, Cast Iron, +with Lid
Kitchen Storage | trash can | Kitchen Trash Can / Step Trash Can / Garbage Can | garbage bin, waste bin, rubbish bin, dustbin | 垃圾桶 | 59 | gal | Touchless, Stainless Steel, +with Lid
Kitchen Storage | food storage containers | Food Storage Containers / Glass Food Storage Container Set | meal prep containers, food containers, lunch boxes | 保鲜盒 | 29 | pcs | Glass, BPA-Free, +with Lids
Kitchen Cabinets | kitchen cabinet | Base Kitchen Cabinet / Wall Kitchen Cabinet / Shaker Kitchen Cabinet | kitchen cupboard, cupboard | 橱柜 | 249 | wide | Shaker, Assembled, +with Soft-Close Doors | color: White, Gray, Navy, Natural, Espresso
Kitchen Cabinets | cabinet pull | Cabinet Pull / Drawer Pull / Cabinet Knob | cabinet handle, drawer handle | 拉手 | 19 | pack | Modern, Bar, +Set | finish: Matte Black, Brushed Nickel, Polished Brass, Chrome, Oil-Rubbed Bronze

@Bath
brands: Aquavel, Tidewell, Clearbrook, Rainford, Porcella, Marlowe
finish: Chrome, Brushed Nickel, Matte Black, Oil-Rubbed Bronze, Polished Brass
material: Brass, Stainless Steel, Ceramic, Porcelain, Zinc, Acrylic
uses: bathroom remodels; guest baths; a spa-like bathroom
Bathroom Faucets | bathroom faucet | Bathroom Sink Faucet / Widespread Bathroom Faucet / Single Hole Bathroom Faucet | bathroom tap, basin tap, lavatory faucet | 浴室水龙头 | 99 | | Widespread, Single-Handle, +with Drain Assembly
Showers | shower head | Rain Shower Head / Handheld Shower Head / Showerhead | rainfall shower, shower sprayer | 花洒 | 59 | showerhead | High Pressure, Dual, +with Hose
Showers | shower system | Shower System / Shower Faucet Set / Tub and Shower Faucet | shower valve, shower mixer, shower set | 淋浴套装 | 249 | | Thermostatic, Rain, +with Valve
Toilets | toilet | Two-Piece Toilet / One-Piece Toilet / Elongated Toilet | commode, wc, lavatory | 马桶 | 299 | | Dual Flush, Comfort Height, +with Seat | color: White, Biscuit, Bone
Toilets | toilet seat | Toilet Seat / Soft Close Toilet Seat | loo seat, toilet lid | 马桶盖 | 39 | shape | Soft Close, Slow Close, +Quick Release | color: White, Biscuit, Bone, Black
Vanities | bathroom vanity | Bathroom Vanity / Vanity with Top / Single Sink Vanity | sink cabinet, bathroom sink cabinet | 浴室柜 | 599 | vanity | Freestanding, Floating, +with Marble Top | color: White, Gray, Navy, Espresso, Natural
Vanities | medicine cabinet | Medicine Cabinet / Recessed Medicine Cabinet | bathroom cabinet, mirror cabinet | 药柜 | 149 | | Recessed, Surface Mount, +with Mirror
Bath Accessories | towel bar | Towel Bar / Towel Rack / Towel Ring | towel rail, towel holder, towel hanger | 毛巾架 | 29 | in | Wall Mount, Double, +Set
Bath Accessories | toilet paper holder | Toilet Paper Holder / Toilet Roll Holder | tp holder, loo roll holder | 卫生纸架 | 19 | | Wall Mount, Freestanding, +with Shelf
Bathtubs | bathtub | Alcove Bathtub / Freestanding Bathtub / Soaking Tub | tub, bath tub | 浴缸 | 899 | tub | Soaking, Acrylic, +with Drain | color: White, Biscuit

@Lighting
brands: Lumora, Glowline, Beamcraft, Halcyon, Sparkwell, Luxwood
finish: Black, Brushed Nickel, Bronze, White, Gold, Chrome
material: Metal, Glass, Fabric, Crystal, Wood, Ceramic
uses: brightening any room; kitchens and entryways; cozy evenings
Ceiling Lights | flush mount light | Flush Mount Ceiling Light / LED Ceiling Light / Semi-Flush Mount Light | ceiling lamp, ceiling fixture | 吸顶灯 | 69 | in | LED, Dimmable, +2-Pack
Ceiling Lights | chandelier | Chandelier / Crystal Chandelier / Farmhouse Chandelier | hanging light fixture, candelabra | 枝形吊灯 | 299 | light | Crystal, Farmhouse, +with Shades
Ceiling Lights | pendant light | Pendant Light / Mini Pendant / Island Pendant Light | hanging lamp, kitchen island light | 吊灯 | 99 | light | Globe, Industrial, +with Glass Shade
Ceiling Fans | ceiling fan | Ceiling Fan / Ceiling Fan with Light / Indoor Ceiling Fan | overhead fan, roof fan | 吊扇 | 179 | fan | Smart, Low Profile, +with Remote
Lamps | table lamp | Table Lamp / Bedside Lamp | bedside lamp, night lamp | 台灯 | 59 | pack | Ceramic, USB, +with Shade
Lamps | floor lamp | Floor Lamp / Arc Floor Lamp / Torchiere Floor Lamp | standing lamp, standard lamp | 落地灯 | 89 | | Arc, Dimmable, +with Shelves
Lamps | desk lamp | LED Desk Lamp / Desk Lamp / Architect Desk Lamp | reading lamp, study lamp, office lamp | 书桌灯 | 39 | | Dimmable, Swing Arm, +with USB Charging
Light Bulbs | led light bulb | LED Light Bulb / A19 LED Bulb | light bulb, lightbulb | 灯泡 | 14 | watt | Dimmable, Daylight, +4-Pack | color: Soft White, Daylight, Bright White
Light Bulbs | smart bulb | Smart Light Bulb / Wi-Fi Smart Bulb | wifi bulb, color changing bulb | 智能灯泡 | 24 | watt | Color Changing, Tunable White, +2-Pack | color: Soft White, Daylight, Multicolor

@Electrical
brands: Ampwell, Circuitline, Sparkhaven, Conduro, Wirewell, Gridmark
color: White, Black, Gray, Ivory, Light Almond
material: Plastic, Nylon, Copper
uses: home wiring upgrades; a safer, smarter home; everyday power needs
Wiring Devices | light switch | Light Switch / Toggle Light Switch / Decorator Rocker Switch | wall switch, rocker switch | 开关 | 9 | pack | Decorator, Single-Pole, +with Wall Plate
Wiring Devices | dimmer switch | Dimmer Switch / LED Dimmer Switch | light dimmer, dimmer | 调光开关 | 29 | | Slide, Smart, +with Wall Plate
Wiring Devices | electrical outlet | GFCI Outlet / Electrical Outlet / USB Wall Outlet | receptacle, wall socket, power point, plug socket | 插座 | 19 | pack | Tamper-Resistant, 15 Amp, +with Wall Plate
Power Strips & Cords | extension cord | Extension Cord / Outdoor Extension Cord | extension lead, power cord | 延长线 | 24 | len | Heavy Duty, Outdoor, +with Lighted End
Power Strips & Cords | power strip | Power Strip / Surge Protector / Surge Protector Power Strip | surge suppressor, multi plug, power board | 排插 | 29 | outlet | USB, Flat Plug, +with Long Cord
Smart Home | smart plug | Smart Plug / Wi-Fi Smart Plug | wifi plug, smart outlet | 智能插座 | 19 | pack | Wi-Fi, Energy Monitoring, +with Voice Control
Smart Home | video doorbell | Video Doorbell / Wireless Video Doorbell | doorbell camera, smart doorbell | 可视门铃 | 129 | | Wireless, 1080p, +with Chime
Smart Home | security camera | Security Camera / Outdoor Security Camera / Indoor Camera | cctv camera, surveillance camera, ip camera | 监控摄像头 | 79 | pack | Wireless, Night Vision, +with Spotlight

@Hardware
brands: Boltwright, Anchorline, Stonebridge, Keystone Forge, Ridgeway, Cinderpeak
finish: Zinc, Stainless Steel, Black, Satin Nickel, Oil-Rubbed Bronze, Galvanized
material: Steel, Stainless Steel, Brass, Zinc, Aluminum
uses: framing and decking; hanging and mounting; everyday fixes
Fasteners | wood screws | Wood Screws / Deck Screws / Construction Screws | wood screw, decking screws | 木螺丝 | 12 | box | Star Drive, Coated, +Box
Fasteners | nails | Common Nails / Finish Nails / Framing Nails | nail, brad nails | 钉子 | 9 | box | Galvanized, Bright, +Box
Fasteners | wall anchors | Drywall Anchors / Wall Anchors / Toggle Bolts | plastic anchors, rawl plugs, wall plugs | 膨胀螺丝 | 8 | box | Self-Drilling, Heavy Duty, +Kit
Door Hardware | door knob | Door Knob / Privacy Door Knob / Passage Door Lever | door handle, door lever | 门把手 | 24 | function | Round, Modern, +2-Pack
Door Hardware | deadbolt | Deadbolt / Keyed Deadbolt / Smart Deadbolt | door lock, smart lock, keyed lock | 门锁 | 49 | | Single Cylinder, Keypad, +with Key
Door Hardware | door hinge | Door Hinge / Butt Hinge | hinge, cabinet hinge | 合页 | 9 | hinge | Square Corner, Ball Bearing, +3-Pack
Shelving | floating shelf | Floating Shelf / Wall Shelf / Floating Wall Shelves | wall shelves, ledge shelf | 墙架 | 34 | in | Rustic, Invisible Bracket, +Set of 2 | color: Natural, White, Black, Walnut, Gray
Shelving | shelf bracket | Shelf Bracket / Angle Bracket / L Bracket | l bracket, corner brace | 角码 | 9 | bracket | Heavy Duty, Decorative, +2-Pack
Shelving | garage shelving | Garage Shelving Unit / Metal Shelving Unit / Storage Shelving | storage rack, utility shelves | 置物架 | 129 | shelf | Boltless, Heavy Duty, +with Wheels | color: Black, Gray, Chrome

@Building Materials
brands: Cedarpeak, Granitex, Northbeam, Quarrystone, Mason & Vale, Builtright
uses: framing and remodeling; new construction; repairs that last
Lumber | lumber | Pressure-Treated Lumber / Kiln-Dried Stud / Common Board | 2x4, wood plank, timber | 木材 | 9 | dim | Kiln-Dried, Premium, +Bundle
Lumber | plywood | Plywood Sheet / Sanded Plywood / OSB Sheathing | osb board, wood sheet, ply | 胶合板 | 49 | thick | Sanded, Pine, +4 ft. x 8 ft.
Drywall | drywall | Drywall Panel / Gypsum Board / Moisture-Resistant Drywall | sheetrock, plasterboard, wallboard | 石膏板 | 15 | thick | Lightweight, Mold-Resistant, +4 ft. x 8 ft.
Drywall | joint compound | Joint Compound / Spackling Paste / All-Purpose Joint Compound | spackle, drywall mud, filler | 腻子 | 19 | bucket | Lightweight, Ready-Mixed, +Pail
Insulation | insulation | Fiberglass Insulation Roll / Foam Board Insulation / Mineral Wool Insulation | batts, loft insulation, rigid foam | 保温棉 | 49 | rval | Unfaced, Kraft-Faced, +Roll
Concrete & Cement | concrete mix | Concrete Mix / Quick-Setting Concrete / High-Strength Concrete | cement, ready mix | 混凝土 | 7 | lb | Fast-Setting, Crack-Resistant, +Bag
Concrete & Cement | mortar mix | Mortar Mix / Type S Mortar / Thinset Mortar | mortar, grout | 砂浆 | 12 | lb | Polymer-Modified, Premium, +Bag

@Flooring
brands: Plankwell, Groundwork, Duraplank, Stoneway, Solenne, Terrabella
color: Oak, Gray, Walnut, White, Espresso, Natural, Hickory, Beige
uses: kitchens and baths; busy households with pets; whole-home renovations
Tile | floor tile | Porcelain Floor Tile / Ceramic Floor Tile / Wood Look Tile | porcelain tile, ceramic tile, floor tiles | 瓷砖 | 3 | tile | Matte, Polished, +Case
Tile | backsplash tile | Mosaic Backsplash Tile / Subway Tile / Peel and Stick Backsplash | kitchen backsplash, splashback, wall tile | 马赛克 | 12 | | Glossy, Marble Look, +Sheet
Vinyl Flooring | vinyl plank flooring | Luxury Vinyl Plank Flooring / Vinyl Plank / Waterproof Vinyl Plank | lvp, vinyl flooring, click vinyl | 乙烯基地板 | 45 | sqft | Waterproof, Click Lock, +Case
Hardwood Flooring | hardwood flooring | Engineered Hardwood Flooring / Solid Hardwood Flooring | wood floor, wooden flooring, parquet | 实木地板 | 89 | sqft | Wire-Brushed, Hand-Scraped, +Case
Laminate Flooring | laminate flooring | Laminate Flooring / Water-Resistant Laminate | laminate floor, floating floor | 复合地板 | 39 | sqft | Water-Resistant, Embossed, +Case
Carpet | carpet tile | Carpet Tile / Peel and Stick Carpet Tile | carpet squares, carpet | 地毯砖 | 39 | sqft | Commercial, Peel and Stick, +Case

@Paint
brands: Colorwell, Brushmark, Tintora, Primecoat, Hueline, Palettex
color: White, Gray, Beige, Blue, Green, Black, Navy, Sage, Greige, Red
uses: interior walls and trim; a weekend room makeover; lasting curb appeal
Interior Paint | interior paint | Interior Paint / Interior Paint and Primer | wall paint, emulsion | 内墙涂料 | 39 | paint | Eggshell, Satin, +One Coat
Exterior Paint | exterior paint | Exterior Paint / Exterior Paint and Primer | house paint, masonry paint | 外墙漆 | 49 | paint | Flat, Semi-Gloss, +One Coat
Exterior Paint | deck stain | Deck Stain / Wood Stain / Semi-Transparent Stain | deck paint, wood preservative, deck sealer | 木器漆 | 39 | paint | Semi-Transparent, Solid Color, +Waterproofing | color: Cedar, Redwood, Natural, Gray, Brown
Spray Paint | spray paint | Spray Paint / Enamel Spray Paint | aerosol paint, spray can | 喷漆 | 8 | oz | Gloss, Matte, +6-Pack
Paint Supplies | paint brush | Paint Brush / Angled Sash Brush / Paint Brush Set | sash brush, trim brush | 油漆刷 | 12 | brush | Angled, Flat, +Set | -
Paint Supplies | paint roller | Paint Roller Kit / Roller Cover / Paint Roller | roller brush, paint tray set | 滚筒刷 | 14 | roller | Microfiber, Lint-Free, +with Tray | -
Paint Supplies | painters tape | Painter's Tape / Masking Tape | masking tape, blue tape | 美纹纸 | 7 | tape | Multi-Surface, Delicate Surface, +3-Pack | color: Blue, Green, Yellow

@Plumbing
brands: Pipewell, Flowmark, Aquaforge, Drainmaster, Coldstream, Brassline
material: PVC, Brass, Copper, Stainless Steel, Plastic
uses: plumbing repairs; kitchen and bath upgrades; clean, safe water
Water Heaters | water heater | Tank Water Heater / Tankless Water Heater / Electric Water Heater | hot water heater, boiler, geyser, hot water system | 热水器 | 699 | tank | Gas, Electric, +with Wi-Fi
Pipes & Fittings | pvc pipe | PVC Pipe / Schedule 40 PVC Pipe / PEX Pipe | plastic pipe, pex tubing, water pipe | 管道 | 9 | pipe | Schedule 40, Pressure, +Pack
Pipes & Fittings | pipe fitting | PVC Elbow / Pipe Fitting / Push-to-Connect Fitting | elbow joint, coupling, tee fitting | 管件 | 5 | fitting | 90-Degree, Brass, +10-Pack
Plumbing Tools | plunger | Toilet Plunger / Plunger / Flange Plunger | sink plunger | 马桶搋子 | 14 | | Heavy Duty, Flange, +with Holder
Plumbing Tools | drain snake | Drain Snake / Drain Auger / Drain Cleaning Tool | plumbing snake, drain unblocker, plumber snake | 管道疏通器 | 29 | len | Drum, Flexible, +with Drill Adapter
Water Filtration | water filter | Under Sink Water Filter / Faucet Water Filter / Whole House Water Filter | water purifier, water filtration system | 净水器 | 99 | stage | Reverse Osmosis, Carbon, +with Faucet

@Heating & Cooling
brands: Frostline, Northwind, Emberly, Climacore, Breezeway, Coldspring
color: White, Black, Gray, Silver
material: Plastic, Metal
uses: hot summer days; cold winter nights; cleaner air at home
Air Conditioners | window air conditioner | Window Air Conditioner / Window AC Unit | window ac, window unit | 窗式空调 | 299 | btu | Inverter, Quiet, +with Remote
Air Conditioners | portable air conditioner | Portable Air Conditioner / Portable AC | portable ac, mobile aircon | 移动空调 | 399 | btu | Dual Hose, Quiet, +with Heat
Fans | box fan | Box Fan / Window Fan | square fan | 箱扇 | 29 | | 3-Speed, Quiet, +2-Pack
Fans | tower fan | Tower Fan / Oscillating Tower Fan | standing fan, pedestal fan | 塔扇 | 69 | tower | Oscillating, Bladeless, +with Remote
Heaters | space heater | Space Heater / Ceramic Space Heater / Oil-Filled Radiator | electric heater, portable heater, room heater | 取暖器 | 49 | heat | Ceramic, Oscillating, +with Thermostat
Air Quality | air purifier | Air Purifier / HEPA Air Purifier | air cleaner, air filter machine | 空气净化器 | 149 | room | True HEPA, Smart, +with Filter
Air Quality | dehumidifier | Dehumidifier / Basement Dehumidifier | moisture absorber, humidity remover | 除湿机 | 199 | pint | Energy Star, Quiet, +with Pump
Air Quality | humidifier | Humidifier / Cool Mist Humidifier | vaporizer, mist maker | 加湿器 | 49 | | Ultrasonic, Cool Mist, +with Night Light

@Cleaning & Storage
brands: Tidyware, Brisk & Co, Sweepwell, Stowmark, Neatline, Boxwell
color: Gray, White, Black, Blue, Red, Clear, Purple
material: Plastic, Polypropylene, Fabric, Wire, Bamboo
uses: a tidy home; garages and closets; quick everyday cleanups
Vacuums | stick vacuum | Cordless Stick Vacuum / Stick Vacuum | hoover, cordless vacuum, hand vac | 吸尘器 | 199 | | Bagless, Lightweight, +with HEPA Filter
Vacuums | robot vacuum | Robot Vacuum / Robot Vacuum and Mop | robotic vacuum, robot cleaner, automatic vacuum | 扫地机器人 | 299 | | Self-Emptying, Wi-Fi, +with Mapping
Vacuums | wet dry vacuum | Wet/Dry Vacuum / Wet Dry Shop Vacuum | shop vac, workshop vacuum | 工业吸尘器 | 99 | shopgal | Portable, Stainless Steel, +with Blower
Cleaning Tools | mop | Spin Mop / Microfiber Mop / Spray Mop | floor mop, mop and bucket | 拖把 | 29 | | Spin, Microfiber, +with Bucket
Cleaning Tools | broom | Broom / Push Broom / Angle Broom | sweeping brush, broom and dustpan | 扫帚 | 19 | broom | Heavy Duty, Angled, +with Dustpan
Storage Bins | storage bin | Storage Bin / Storage Tote / Plastic Storage Box | plastic box, storage container, tote | 收纳箱 | 19 | tote | Stackable, Latching, +with Lid
Storage Bins | laundry basket | Laundry Basket / Laundry Hamper | clothes hamper, laundry bin | 洗衣篮 | 29 | | Collapsible, Woven, +with Handles
Closet Organization | closet organizer | Closet Organizer System / Closet Organizer | wardrobe organizer, closet system | 衣柜收纳 | 149 | closet | Adjustable, Wire, +with Shoe Rack
Closet Organization | clothes hangers | Clothes Hangers / Velvet Hangers / Wooden Hangers | coat hangers, hangers | 衣架 | 19 | hanger | Non-Slip, Slim, +Set
"""

_COLOR_ZH = {
    "Black": "黑色", "White": "白色", "Gray": "灰色", "Red": "红色", "Yellow": "黄色",
    "Blue": "蓝色", "Orange": "橙色", "Green": "绿色", "Brown": "棕色", "Beige": "米色",
    "Navy": "海军蓝", "Cream": "奶油色", "Charcoal": "炭灰色", "Ivory": "象牙白",
    "Pink": "粉色", "Gold": "金色", "Silver": "银色", "Copper": "铜色", "Chrome": "镀铬",
    "Brushed Nickel": "拉丝镍", "Matte Black": "哑光黑", "Oil-Rubbed Bronze": "油擦青铜",
    "Polished Brass": "抛光黄铜", "Bronze": "青铜色", "Stainless Steel": "不锈钢",
    "Black Stainless": "黑色不锈钢", "Natural": "原木色", "Espresso": "深咖啡色",
    "Walnut": "胡桃木色", "Oak": "橡木色", "Hickory": "山核桃木色", "Biscuit": "饼干色",
    "Bone": "骨白色", "Soft White": "暖白", "Daylight": "日光", "Bright White": "亮白",
    "Multicolor": "彩色", "Light Almond": "杏色", "Zinc": "锌色", "Satin Nickel": "缎面镍",
    "Galvanized": "镀锌", "Sage": "鼠尾草绿", "Greige": "灰米色", "Cedar": "雪松色",
    "Redwood": "红木色", "Clear": "透明", "Purple": "紫色",
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class _Dept:
    name: str
    brands: tuple[str, ...]
    color_key: str
    colors: tuple[str, ...]
    materials: tuple[str, ...]
    uses: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _Type:
    key: str
    dept: int
    leaf: str
    titles: tuple[str, ...]
    synonyms: tuple[str, ...]
    zh: str
    median_price: float
    size_key: str
    sizes: tuple[str, ...]
    prefixes: tuple[str, ...]
    suffixes: tuple[str, ...]
    color_key: str
    colors: tuple[str, ...]


def _split(text: str, sep: str) -> tuple[str, ...]:
    return tuple(s.strip() for s in text.split(sep) if s.strip())


@cache
def _taxonomy() -> tuple[tuple[_Dept, ...], tuple[_Type, ...]]:
    depts: list[_Dept] = []
    types: list[_Type] = []
    meta: dict[str, str] = {}

    def close_dept() -> None:
        if meta:
            color_key = "finish" if "finish" in meta else "color"
            depts.append(
                _Dept(
                    name=meta["name"],
                    brands=_split(meta["brands"], ","),
                    color_key=color_key,
                    colors=_split(meta.get(color_key, ""), ","),
                    materials=_split(meta.get("material", ""), ","),
                    uses=_split(meta["uses"], ";"),
                )
            )

    pending: list[tuple[str, ...]] = []
    for raw in _TAXONOMY.strip().splitlines():
        line = raw.strip()
        if not line:
            continue
        if line.startswith("@"):
            close_dept()
            meta = {"name": line[1:].strip()}
        elif "|" not in line:
            k, _, v = line.partition(":")
            meta[k.strip()] = v.strip()
        else:
            pending.append((meta["name"], *(f.strip() for f in line.split("|"))))
    close_dept()

    dept_index = {d.name: i for i, d in enumerate(depts)}
    for entry in pending:
        dname, leaf, key, titles, syns, zh, price, pool, feats, *rest = entry
        d = depts[dept_index[dname]]
        features = _split(feats, ",")
        color_key, colors = d.color_key, d.colors
        if rest:
            override = rest[0]
            if override == "-":
                colors = ()
            else:
                k, _, v = override.partition(":")
                color_key, colors = k.strip(), _split(v, ",")
        size_key, sizes = _SIZES[pool] if pool else ("", ())
        types.append(
            _Type(
                key=key,
                dept=dept_index[dname],
                leaf=f"{dname} > {leaf}",
                titles=_split(titles, " / "),
                synonyms=_split(syns, ","),
                zh=zh,
                median_price=float(price),
                size_key=size_key,
                sizes=sizes,
                prefixes=tuple(f for f in features if not f.startswith("+")),
                suffixes=tuple(f[1:] for f in features if f.startswith("+")),
                color_key=color_key,
                colors=colors,
            )
        )
    return tuple(depts), tuple(types)


# ---------------------------------------------------------------------------- products

# Sizes that read naturally only after the product name ("TV Stand for TVs up to 65 in.").
_SIZE_AFTER_NAME = ("for ", "up to ", "Seats ")

_GENERIC_SENTENCES = (
    "Backed by a limited warranty.",
    "Easy to assemble and easy to clean.",
    "Ships in 2-3 business days.",
    "Rated highly by customers for value.",
)


@dataclass(frozen=True, slots=True)
class _Catalog:
    """Products plus the integer columns the session and judgment simulators need."""

    products: list[Product]
    type_of: IntArray
    brand_code: IntArray
    color_code: IntArray  # index into ``values``; -1 when the product has no colour
    size_code: IntArray
    log_price_rel: npt.NDArray[np.float64]  # log(price / the type's median price)
    in_stock: npt.NDArray[np.bool_]
    by_type: list[IntArray]
    by_leaf: list[IntArray]
    neighbours: list[IntArray]  # per type: products of the same leaf, other types
    leaf_of_type: IntArray
    leaves: list[str]
    brands: list[str]
    values: list[str]


def _with_article(phrase: str) -> str:
    """``phrase`` opening a sentence: "An oak dresser", but "Blackout curtains"."""
    last = phrase.split()[-1].lower()
    if last.endswith("s") and not last.endswith("ss"):
        return phrase[:1].upper() + phrase[1:]
    return f"{'An' if phrase[:1].lower() in 'aeiou' else 'A'} {phrase}"


def _lower(text: str) -> str:
    """Lower-case for running text, keeping acronyms such as LED, TV or Wi-Fi."""
    return " ".join(w if _is_acronym(w) else w.lower() for w in text.split())


def _is_acronym(word: str) -> bool:
    letters = "".join(c for c in word if c.isalpha())
    return (len(letters) > 1 and letters.isupper()) or word in ("Wi-Fi", "WiFi")


def _make_products(rng: np.random.Generator, n_products: int, progress: bool) -> _Catalog:
    depts, types = _taxonomy()
    brands = [b for d in depts for b in d.brands]
    brand_base = np.cumsum([0] + [len(d.brands) for d in depts])
    tiers = rng.lognormal(0.0, 0.25, len(brands))
    n_types = len(types)
    weights = rng.lognormal(0.0, 0.6, n_types)
    if n_products >= n_types:
        counts = 1 + rng.multinomial(n_products - n_types, weights / weights.sum())
    else:
        counts = np.zeros(n_types, dtype=np.int64)
        counts[rng.choice(n_types, n_products, replace=False)] = 1

    values: dict[str, int] = {}
    # title, description, category, brand, price, in_stock, attributes
    records: list[tuple[str, str, str, str, float, bool, dict[str, str]]] = []
    type_of: list[int] = []
    brand_code: list[int] = []
    color_code: list[int] = []
    size_code: list[int] = []
    log_rel: list[float] = []
    in_stock: list[bool] = []

    for t in tqdm(range(n_types), desc="products", unit="type", disable=not progress):
        c = int(counts[t])
        if c == 0:
            continue
        typ = types[t]
        d = depts[typ.dept]
        brand_i = rng.choice(len(d.brands), c, p=rng.dirichlet(np.full(len(d.brands), 0.8)))
        name_w = 0.55 ** np.arange(len(typ.titles))
        name_i = rng.choice(len(typ.titles), c, p=name_w / name_w.sum())
        color_i = rng.integers(0, max(1, len(typ.colors)), c)
        material_i = rng.integers(0, max(1, len(d.materials)), c)
        size_i = rng.integers(0, max(1, len(typ.sizes)), c)
        prefix_i = rng.integers(0, max(1, len(typ.prefixes)), c)
        suffix_i = rng.integers(0, max(1, len(typ.suffixes)), c)
        use_i = rng.integers(0, len(d.uses), c)
        template_i = rng.integers(0, 3, c)
        extra_i = rng.integers(0, 1 << 16, c)
        flags = rng.random((c, 8))
        price_noise = rng.normal(0.0, 0.3, c)

        for j in range(c):
            f = flags[j]
            brand = d.brands[brand_i[j]]
            name = typ.titles[name_i[j]]
            color = typ.colors[color_i[j]] if typ.colors else ""
            material = d.materials[material_i[j]] if d.materials else ""
            size = typ.sizes[size_i[j]] if typ.sizes else ""
            prefix = typ.prefixes[prefix_i[j]] if typ.prefixes else ""

            parts = [brand]
            size_after = size.startswith(_SIZE_AFTER_NAME)
            if size and not size_after and f[0] < 0.75:
                parts.append(size)
            if prefix and f[1] < 0.5 and prefix.lower() not in name.lower():
                parts.append(prefix)
            parts.append(name)
            if typ.suffixes and f[2] < 0.35:
                parts.append(typ.suffixes[suffix_i[j]])
            if size and size_after and f[0] < 0.75:
                parts.append(size)
            title = " ".join(parts)
            if color and f[3] < 0.85:
                title += f", {color}"

            use = d.uses[use_i[j]]
            template = int(template_i[j])
            if template == 1 and material:
                first = _with_article(f"{_lower(material)} {_lower(name)}") + f" from {brand}"
                description = f"{first}, built for {use}."
            elif template == 2 and prefix:
                description = _with_article(f"{_lower(prefix)} {_lower(name)}") + f" for {use}."
            else:
                description = f"The {brand} {name} is made for {use}."
            extra = int(extra_i[j])
            if f[4] < 0.3 and color:
                description += f" Finished in {_lower(color)}."
            elif f[4] < 0.5 and size:
                description += f" Size: {size.rstrip('.')}."
            elif f[4] < 0.6 and typ.synonyms:
                description += f" Also known as: {typ.synonyms[extra % len(typ.synonyms)]}."
            elif f[4] < 0.8:
                description += " " + _GENERIC_SENTENCES[extra % len(_GENERIC_SENTENCES)]

            base_price = typ.median_price * tiers[brand_base[typ.dept] + brand_i[j]]
            raw_price = base_price * math.exp(price_noise[j]) * (1.0 + 0.15 * size_i[j])
            price = round(round(raw_price) - 0.01, 2) if raw_price >= 5 else round(raw_price, 2)
            price = max(price, 0.5)

            attributes: dict[str, str] = {}
            if color:
                attributes[typ.color_key] = color
            if material:
                attributes["material"] = material
            if size:
                attributes[typ.size_key] = size
            if f[5] < 0.01:
                attributes["title_zh"] = f"{brand} {_COLOR_ZH.get(color, '')}{typ.zh}"

            stocked = bool(f[6] < 0.92)
            records.append((title, description, typ.leaf, brand, price, stocked, attributes))
            type_of.append(t)
            brand_code.append(int(brand_base[typ.dept] + brand_i[j]))
            color_code.append(values.setdefault(color, len(values)) if color else -1)
            size_code.append(values.setdefault(size, len(values)) if size else -1)
            log_rel.append(math.log(price / typ.median_price))
            in_stock.append(stocked)

    order = rng.permutation(len(records))
    products = [Product(f"P{i + 1:06d}", *records[k]) for i, k in enumerate(order.tolist())]
    type_arr = np.asarray(type_of, dtype=np.int64)[order]
    leaves = sorted({t.leaf for t in types})
    leaf_index = {leaf: i for i, leaf in enumerate(leaves)}
    leaf_of_type = np.asarray([leaf_index[t.leaf] for t in types], dtype=np.int64)
    leaf_arr = leaf_of_type[type_arr]
    by_type = [np.flatnonzero(type_arr == t) for t in range(n_types)]
    by_leaf = [np.flatnonzero(leaf_arr == i) for i in range(len(leaves))]
    neighbours = [by_leaf[leaf_of_type[t]][type_arr[by_leaf[leaf_of_type[t]]] != t] for t in range(n_types)]
    return _Catalog(
        products=products,
        type_of=type_arr,
        brand_code=np.asarray(brand_code, dtype=np.int64)[order],
        color_code=np.asarray(color_code, dtype=np.int64)[order],
        size_code=np.asarray(size_code, dtype=np.int64)[order],
        log_price_rel=np.asarray(log_rel, dtype=np.float64)[order],
        in_stock=np.asarray(in_stock, dtype=np.bool_)[order],
        by_type=by_type,
        by_leaf=by_leaf,
        neighbours=neighbours,
        leaf_of_type=leaf_of_type,
        leaves=leaves,
        brands=brands,
        values=list(values),
    )


# ---------------------------------------------------------------------------- users


@dataclass(frozen=True, slots=True)
class _Tastes:
    """Users' tastes as arrays, for fast sampling."""

    brand_affinity: npt.NDArray[np.float64]  # users x brands
    leaf_choices: list[IntArray]
    leaf_cum: list[npt.NDArray[np.float64]]
    price_sensitivity: npt.NDArray[np.float64]


def _normalise_rows(w: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    total = w.sum(axis=-1, keepdims=True)
    out: npt.NDArray[np.float64] = np.divide(w, total, out=np.zeros_like(w), where=total > 0)
    return out


def _make_users(rng: np.random.Generator, n_users: int, cat: _Catalog) -> tuple[list[UserProfile], _Tastes]:
    """Each user favours 1-3 departments (weighted by their size), 1-3 live leaves in each
    and 2-4 brands of those departments, with Dirichlet weights; drawn for all users at
    once with the Gumbel top-k trick."""
    depts, types = _taxonomy()
    n_depts, n_leaves, n_brands = len(depts), len(cat.leaves), len(cat.brands)
    dept_of_leaf = np.zeros(n_leaves, dtype=np.int64)
    for t, typ in enumerate(types):
        dept_of_leaf[cat.leaf_of_type[t]] = typ.dept
    dept_of_brand = np.repeat(np.arange(n_depts), [len(d.brands) for d in depts])
    leaf_sizes = np.asarray([len(x) for x in cat.by_leaf], dtype=np.float64)
    leaf_alive = leaf_sizes > 0
    dept_sizes = np.bincount(dept_of_leaf, weights=leaf_sizes, minlength=n_depts)
    live_leaves = np.bincount(dept_of_leaf[leaf_alive], minlength=n_depts)
    n_live = int((dept_sizes > 0).sum())
    slot = np.arange(4)
    rows = np.arange(n_users)[:, None]

    with np.errstate(divide="ignore"):
        dept_logp = np.log(dept_sizes / dept_sizes.sum())
    dept_pick = np.argsort(-(dept_logp + rng.gumbel(size=(n_users, n_depts))), axis=1)[:, :3]
    n_dept = np.minimum(1 + np.minimum(2, rng.poisson(0.7, n_users)), n_live)
    dept_w = _normalise_rows(rng.gamma(1.0, size=(n_users, 3)) * (slot[:3] < n_dept[:, None]))

    leaf_keys = rng.gumbel(size=(n_users, 3, n_leaves))
    allowed = (dept_of_leaf[None, None, :] == dept_pick[:, :, None]) & leaf_alive
    leaf_pick = np.argsort(np.where(allowed, -leaf_keys, np.inf), axis=2)[:, :, :3]
    n_leaf = np.minimum(1 + rng.integers(0, 3, (n_users, 3)), live_leaves[dept_pick])
    leaf_w = rng.gamma(1.0, size=(n_users, 3, 3)) * (slot[:3] < n_leaf[:, :, None])
    leaf_w = _normalise_rows(leaf_w) * dept_w[:, :, None]

    chosen = np.zeros((n_users, n_depts), dtype=np.bool_)
    chosen[rows, dept_pick] = slot[:3] < n_dept[:, None]
    brand_ok = chosen[:, dept_of_brand]
    brand_keys = np.where(brand_ok, -rng.gumbel(size=(n_users, n_brands)), np.inf)
    brand_pick = np.argsort(brand_keys, axis=1)[:, :4]
    n_brand = np.minimum(2 + rng.integers(0, 3, n_users), brand_ok.sum(axis=1))
    brand_w = _normalise_rows(rng.gamma(0.7, size=(n_users, 4)) * (slot < n_brand[:, None]))
    sensitivity = np.round(rng.beta(2.0, 2.0, n_users), 4)

    users: list[UserProfile] = []
    affinity = np.zeros((n_users, n_brands), dtype=np.float64)
    leaf_choices: list[IntArray] = []
    leaf_cum: list[npt.NDArray[np.float64]] = []
    leaf_pick_l, leaf_w_l, n_leaf_l = leaf_pick.tolist(), leaf_w.tolist(), n_leaf.tolist()
    brand_pick_l, brand_w_l = brand_pick.tolist(), brand_w.tolist()
    for u in range(n_users):
        leaf_items: list[tuple[int, float]] = []
        for a in range(int(n_dept[u])):
            for b in range(n_leaf_l[u][a]):
                leaf_items.append((leaf_pick_l[u][a][b], round(leaf_w_l[u][a][b], 4) or 0.0001))
        leaf_items.sort(key=lambda kv: -kv[1])
        brand_items = [(brand_pick_l[u][b], round(brand_w_l[u][b], 4) or 0.0001) for b in range(n_brand[u])]
        brand_items.sort(key=lambda kv: -kv[1])
        users.append(
            UserProfile(
                id=f"U{u + 1:05d}",
                brand_affinity={cat.brands[b]: w for b, w in brand_items},
                category_affinity={cat.leaves[leaf]: w for leaf, w in leaf_items},
                price_sensitivity=float(sensitivity[u]),
            )
        )
        for b, w in brand_items:
            affinity[u, b] = w
        weights = np.asarray([w for _, w in leaf_items], dtype=np.float64)
        leaf_choices.append(np.asarray([leaf for leaf, _ in leaf_items], dtype=np.int64))
        cum = np.cumsum(weights / weights.sum())
        cum[-1] = 1.0
        leaf_cum.append(cum)
    return users, _Tastes(affinity, leaf_choices, leaf_cum, sensitivity)


# ---------------------------------------------------------------------------- queries

_QUERY_CLEAN = str.maketrans({"'": "", ",": "", ".": "", "/": " ", "-": " ", "&": " "})


def _query_words(text: str) -> list[str]:
    return text.lower().translate(_QUERY_CLEAN).split()


def _typo(rng: np.random.Generator, word: str) -> str:
    """Swap two neighbouring letters, drop one or double one (never the first letter)."""
    i = int(rng.integers(1, len(word) - 1))
    op = int(rng.integers(0, 3))
    if op == 0 and word[i] != word[i + 1]:
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    if op == 2:
        return word[:i] + word[i] + word[i:]
    return word[:i] + word[i + 1 :]


def _noisy_query(rng: np.random.Generator, typ: _Type, attribute: str) -> str:
    """A shopper's query for a product type (and an attribute such as a colour or brand)."""
    r = rng.random(10)
    if typ.synonyms and r[0] < 0.25:
        base = typ.synonyms[int(r[1] * len(typ.synonyms))]
    elif r[0] < 0.5:
        base = typ.titles[int(r[1] * len(typ.titles))]
    else:
        base = typ.key
    words = _query_words(base)
    if attribute:
        extra = _query_words(attribute)
        words = extra + words if r[2] < 0.75 else words + extra
    if typ.prefixes and r[3] < 0.12:
        feature = _query_words(typ.prefixes[int(r[4] * len(typ.prefixes))])
        if not set(feature) & set(words):
            words = feature + words
    if len(words) > 1 and r[5] < 0.08:
        words = [words[i] for i in rng.permutation(len(words)).tolist()]
    if r[6] < 0.08:
        long = [i for i, w in enumerate(words) if len(w) >= 6 and w.isalpha()]
        if long:
            i = long[int(r[7] * len(long))]
            words[i] = words[i][: max(3, math.ceil(len(words[i]) * 0.6))]
    if r[8] < 0.15:
        typeable = [i for i, w in enumerate(words) if len(w) >= 4 and w.isalpha()]
        if typeable:
            i = typeable[int(r[9] * len(typeable))]
            words[i] = _typo(rng, words[i])
    return " ".join(words)


# ---------------------------------------------------------------------------- sessions

# An intent: (product type, attribute kind or "", attribute value code or -1).
_Intent = tuple[int, str, int]


@dataclass(frozen=True, slots=True)
class _Pool:
    """A candidate set (one product type or one leaf) with its columns gathered once."""

    items: IntArray
    brand: IntArray
    color: IntArray
    size: IntArray
    log_price_rel: npt.NDArray[np.float64]
    stock_penalty: npt.NDArray[np.float64]

    @classmethod
    def of(cls, cat: _Catalog, items: IntArray) -> _Pool:
        return cls(
            items=items,
            brand=cat.brand_code[items],
            color=cat.color_code[items],
            size=cat.size_code[items],
            log_price_rel=cat.log_price_rel[items],
            stock_penalty=np.where(cat.in_stock[items], 0.0, 1.5),
        )

    def codes(self, kind: str) -> IntArray:
        return {"color": self.color, "brand": self.brand, "size": self.size}[kind]


def _make_sessions(
    rng: np.random.Generator,
    n_sessions: int,
    cat: _Catalog,
    users: list[UserProfile],
    tastes: _Tastes,
    progress: bool,
) -> tuple[list[Event], list[tuple[str, _Intent]]]:
    """Simulate sessions one after another. A session picks a leaf from the user's tastes
    (or, 20 % of the time, a product type by popularity); 15 % browse the leaf without a
    query, the rest search for a type, maybe with a colour, brand or size. The user views
    the best few products by brand affinity, price, stock and attribute match plus Gumbel
    noise, clicks some (less further down), and puts some in the cart and buys them."""
    _, types = _taxonomy()
    type_sizes = np.asarray([len(x) for x in cat.by_type], dtype=np.float64)
    type_cum = np.cumsum(type_sizes / type_sizes.sum())
    type_cum[-1] = 1.0
    leaf_types: list[IntArray] = []
    leaf_type_cum: list[npt.NDArray[np.float64]] = []
    for leaf in range(len(cat.leaves)):
        ts = np.flatnonzero((cat.leaf_of_type == leaf) & (type_sizes > 0))
        leaf_types.append(ts)
        cum = np.cumsum(type_sizes[ts]) / max(1.0, float(type_sizes[ts].sum()))
        if len(cum):
            cum[-1] = 1.0
        leaf_type_cum.append(cum)
    type_pools = [_Pool.of(cat, items) for items in cat.by_type]
    leaf_pools = [_Pool.of(cat, items) for items in cat.by_leaf]

    user_of = rng.integers(0, len(users), n_sessions).tolist()
    draws = rng.random((n_sessions, 8)).tolist()
    n_shown = (1 + rng.poisson(2.5, n_sessions)).tolist()
    session_gaps = (1 + rng.exponential(180.0, n_sessions).astype(np.int64)).tolist()
    user_ids = [u.id for u in users]
    product_ids = [p.id for p in cat.products]
    in_stock = cat.in_stock.tolist()

    events: list[Event] = []
    queries: list[tuple[str, _Intent]] = []
    clock = START_TIMESTAMP
    for s in tqdm(range(n_sessions), desc="sessions", unit="session", disable=not progress):
        u = user_of[s]
        r = draws[s]
        clock += session_gaps[s]
        affinity = tastes.brand_affinity[u]
        if r[0] < 0.2:
            t = int(np.searchsorted(type_cum, r[1], side="right"))
            leaf = int(cat.leaf_of_type[t])
        else:
            leaf = int(tastes.leaf_choices[u][np.searchsorted(tastes.leaf_cum[u], r[1], side="right")])
            t = int(leaf_types[leaf][np.searchsorted(leaf_type_cum[leaf], r[2], side="right")])
        typ = types[t]
        query: str | None = None
        match: npt.NDArray[np.bool_] | None = None
        if r[3] < 0.15:  # a browse session: category pages, no query
            pool = leaf_pools[leaf]
        else:
            pool = type_pools[t]
            j = int(r[5] * len(pool.items))
            kind, code = "", -1
            if r[4] < 0.30 and typ.colors:
                kind, code = "color", int(pool.color[j])
            elif r[4] < 0.45:
                kind, code = "brand", int(pool.brand[j])
                if r[6] < 0.7:
                    liked = affinity[pool.brand]
                    best = int(np.argmax(liked))
                    if liked[best] > 0:
                        code = int(pool.brand[best])
            elif r[4] < 0.55 and typ.sizes:
                kind, code = "size", int(pool.size[j])
            attribute = cat.brands[code] if kind == "brand" else cat.values[code] if kind else ""
            query = _noisy_query(rng, typ, attribute)
            queries.append((query, (t, kind, code)))
            if kind:
                match = pool.codes(kind) == code

        score = rng.gumbel(size=len(pool.items))
        score += 3.0 * affinity[pool.brand]
        score -= (1.5 * tastes.price_sensitivity[u]) * pool.log_price_rel
        score -= pool.stock_penalty
        if match is not None:
            score += 2.0 * match
        k = min(len(pool.items), n_shown[s])
        top = np.argsort(-score)[:k]
        shown = pool.items[top].tolist()
        if query is None:
            boost = [1.0] * k
        elif match is None:
            boost = [1.2] * k
        else:
            boost = [1.2 if m else 0.8 for m in match[top].tolist()]
        neighbours = cat.neighbours[t]
        if query is not None and r[7] < 0.25 and len(neighbours):
            pos = int(rng.integers(0, len(shown) + 1))
            shown.insert(pos, int(neighbours[rng.integers(0, len(neighbours))]))
            boost.insert(pos, 0.3)
        acts = rng.random((len(shown), 3)).tolist()
        steps = (1 + rng.exponential(12.0, (len(shown), 4)).astype(np.int64)).tolist()
        uid = user_ids[u]
        for rank, p in enumerate(shown):
            item = product_ids[p]
            act, step = acts[rank], steps[rank]
            clock += step[0]
            events.append(Event(uid, item, "view", float(clock), query))
            if act[0] >= min(0.9, 0.55 * 0.85**rank * boost[rank]):
                continue
            clock += step[1]
            events.append(Event(uid, item, "click", float(clock), query))
            if not in_stock[p] or act[1] >= 0.22:
                continue
            clock += step[2]
            events.append(Event(uid, item, "cart", float(clock), query))
            if act[2] < 0.5:
                clock += step[3]
                events.append(Event(uid, item, "purchase", float(clock), query))
    return events, queries


# ---------------------------------------------------------------------------- judgments


def _make_judgments(
    rng: np.random.Generator,
    queries: Sequence[tuple[str, _Intent]],
    n_judged: int,
    cat: _Catalog,
    progress: bool,
) -> tuple[list[Judgment], list[Judgment]]:
    intents: dict[str, _Intent] = {}
    for q, intent in queries:
        intents.setdefault(q, intent)
    # Sample query occurrences, as a judged set drawn from a query log would be: frequent
    # (mostly clean) queries are likelier to be judged than one-off typos.
    first_seen = {q: i for i, q in enumerate(intents)}
    picked: dict[str, None] = {}
    for i in rng.permutation(len(queries)).tolist():
        if len(picked) >= n_judged:
            break
        picked.setdefault(queries[i][0])
    distinct = sorted(picked, key=first_seen.__getitem__)
    n = len(distinct)
    if n == 0:
        return [], []
    in_train = np.zeros(n, dtype=np.bool_)
    in_train[rng.permutation(n)[: round(TRAIN_SHARE * n)]] = True
    product_ids = [p.id for p in cat.products]
    train: list[Judgment] = []
    test: list[Judgment] = []
    for i in tqdm(range(n), desc="judgments", unit="query", disable=not progress):
        q = distinct[i]
        t, kind, code = intents[q]
        cand = cat.by_type[t]
        if kind:
            match = _Pool.of(cat, cand).codes(kind) == code
            exact, partial = cand[match], cand[~match]
        else:
            exact, partial = cand, cand[:0]
        nb = cat.neighbours[t]
        related = np.sort(rng.choice(nb, min(20, len(nb)), replace=False)) if len(nb) else nb
        out = train if in_train[i] else test
        for grade, group in ((3.0, exact), (2.0, partial), (1.0, related)):
            out.extend(Judgment(q, product_ids[p], grade) for p in group.tolist())
    return train, test


# ---------------------------------------------------------------------------- public API


def generate_storefront(
    n_products: int = 20_000,
    n_users: int = 2_000,
    n_sessions: int = 20_000,
    seed: int = 0,
    *,
    progress: bool = False,
) -> Storefront:
    """Generate a storefront: the same arguments always give an equal result.

    About 85 % of sessions search (their events carry the query), the rest browse a
    category. ``round(0.15 * n_sessions)`` distinct session queries are judged (3,000 by
    default), split by query 70/30 into ``judgments`` and ``test_judgments``.
    """
    if n_products < 1 or n_users < 1 or n_sessions < 0:
        raise ConfigError(
            "generate_storefront needs n_products >= 1, n_users >= 1 and n_sessions >= 0,"
            f" got {n_products}, {n_users}, {n_sessions}"
        )
    rng = np.random.default_rng(seed)
    cat = _make_products(rng, n_products, progress)
    users, tastes = _make_users(rng, n_users, cat)
    events, queries = _make_sessions(rng, n_sessions, cat, users, tastes, progress)
    n_judged = round(JUDGED_QUERIES_PER_SESSION * n_sessions)
    train, test = _make_judgments(rng, queries, n_judged, cat, progress)
    return Storefront(
        products=cat.products,
        users=users,
        events=events,
        judgments=train,
        test_judgments=test,
        seed=seed,
    )


_README = """\
shoprec synthetic storefront (seed {seed})
Generated by shoprec.catalog.synthetic.generate_storefront; the same seed and sizes
give byte-identical files. All text is UTF-8.

products.jsonl       {n_products} products, one JSON object a line:
                     id ("P000001"...), title, description, category (a path such as
                     "Tools > Power Tools > Drills"), brand, price (USD), in_stock,
                     attributes (str -> str: color or finish, material, a size such as
                     voltage or capacity, and for about 1 % of products title_zh, a
                     Chinese title).
users.jsonl          {n_users} shoppers: id ("U00001"...), brand_affinity and
                     category_affinity (weights over brands and leaf categories, about 1
                     in total) and price_sensitivity (0..1, 1 = prefers cheaper items).
events.csv           {n_events} events: user_id,item_id,type,timestamp,query
                     type is view, click, cart or purchase; timestamp is Unix seconds,
                     increasing; query is the search that led to the event, empty for
                     category browsing.
judgments_train.csv  {n_train} judgments over {q_train} queries: query,product_id,relevance
judgments_test.csv   {n_test} judgments over {q_test} other queries, same columns.
                     The queries are the shoppers' own strings (synonyms, typos,
                     prefixes, shuffled words). Relevance:
                       3  the intended product type, with the requested attribute if any
                       2  the intended product type without the requested attribute
                       1  another type of the same leaf category (at most 20 per query)
                       0  everything else (not listed)

Load them with shoprec.catalog.loaders (load_products, load_events, load_judgments).
"""


def _distinct_queries(judgments: Sequence[Judgment]) -> int:
    return len(dict.fromkeys(j.query for j in judgments))


def write_storefront(sf: Storefront, out_dir: str | Path) -> dict[str, Path]:
    """Write ``sf`` into ``out_dir``, replacing what was there, and return the files by name.

    The files are written into a fresh folder next to ``out_dir`` which is then renamed
    into place, so readers never see a half-written storefront.
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise DataError(f"{out}: exists and is not a directory")
    names = {
        "products": "products.jsonl",
        "users": "users.jsonl",
        "events": "events.csv",
        "judgments_train": "judgments_train.csv",
        "judgments_test": "judgments_test.csv",
        "readme": "README.txt",
    }
    with build_folder(out, mode=0o755) as tmp:
        write_products_jsonl(sf.products, tmp / names["products"])
        write_events_csv(sf.events, tmp / names["events"])
        write_judgments_csv(sf.judgments, tmp / names["judgments_train"])
        write_judgments_csv(sf.test_judgments, tmp / names["judgments_test"])
        with (tmp / names["users"]).open("w", encoding="utf-8") as f:
            for u in sf.users:
                record = {
                    "id": u.id,
                    "brand_affinity": dict(u.brand_affinity),
                    "category_affinity": dict(u.category_affinity),
                    "price_sensitivity": u.price_sensitivity,
                }
                f.write(json.dumps(record, ensure_ascii=False) + "\n")
        readme = _README.format(
            seed=sf.seed,
            n_products=len(sf.products),
            n_users=len(sf.users),
            n_events=len(sf.events),
            n_train=len(sf.judgments),
            q_train=_distinct_queries(sf.judgments),
            n_test=len(sf.test_judgments),
            q_test=_distinct_queries(sf.test_judgments),
        )
        (tmp / names["readme"]).write_text(readme, encoding="utf-8")
    return {key: out / name for key, name in names.items()}
