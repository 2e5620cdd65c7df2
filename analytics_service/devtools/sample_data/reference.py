"""Reference data of the generated store: catalog, geography, names, payment, traffic and seasonality.

Weights are relative; what the resulting numbers mean is in docs/metrics.md.
"""

from __future__ import annotations

# category -> subcategory -> (median price, log-sd, product nouns); brands per category
CATALOG: dict[str, tuple[list[str], dict[str, tuple[float, float, list[str]]]]] = {
    "Electronics": (
        ["Sonora", "Voltix", "Nimbus", "Auralis", "Kepler"],
        {
            "Headphones": (
                79.0,
                0.55,
                ["Wireless Headphones", "Earbuds", "Studio Headphones", "Noise Cancelling Headphones"],
            ),
            "Smartphones": (449.0, 0.45, ["Smartphone", "Phone"]),
            "Laptops": (899.0, 0.35, ["Laptop", "Ultrabook", "Notebook PC"]),
            "Accessories": (19.0, 0.6, ["USB-C Cable", "Charger", "Phone Case", "Power Bank", "Screen Protector"]),
            "Smart Home": (59.0, 0.5, ["Smart Plug", "Smart Speaker", "Security Camera", "Smart Bulb"]),
        },
    ),
    "Home & Kitchen": (
        ["Casa Nova", "Hearth & Co", "Lumen", "Oakridge"],
        {
            "Cookware": (45.0, 0.55, ["Frying Pan", "Saucepan", "Dutch Oven", "Knife Set"]),
            "Coffee & Tea": (29.0, 0.7, ["Coffee Grinder", "French Press", "Espresso Machine", "Tea Kettle"]),
            "Bedding": (55.0, 0.45, ["Duvet Cover", "Pillow", "Sheet Set", "Weighted Blanket"]),
            "Storage": (22.0, 0.5, ["Storage Box", "Shelf Organizer", "Food Container Set"]),
            "Decor": (34.0, 0.6, ["Table Lamp", "Wall Art", "Scented Candle", "Vase"]),
        },
    ),
    "Fashion": (
        ["Northwind Apparel", "Urbano", "Drift", "Solstice"],
        {
            "Shoes": (69.0, 0.4, ["Sneakers", "Running Shoes", "Boots", "Sandals"]),
            "T-Shirts": (22.0, 0.35, ["T-Shirt", "Graphic Tee", "Polo Shirt"]),
            "Jackets": (99.0, 0.4, ["Rain Jacket", "Denim Jacket", "Puffer Jacket"]),
            "Bags": (49.0, 0.55, ["Backpack", "Tote Bag", "Crossbody Bag", "Duffel Bag"]),
        },
    ),
    "Sports & Outdoors": (
        ["Peakline", "Stride", "TerraTrek", "Velo"],
        {
            "Running": (39.0, 0.5, ["Running Belt", "Running Socks", "Hydration Vest"]),
            "Yoga": (29.0, 0.45, ["Yoga Mat", "Yoga Block", "Yoga Strap"]),
            "Camping": (89.0, 0.6, ["Tent", "Sleeping Bag", "Camping Stove", "Headlamp"]),
            "Cycling": (59.0, 0.7, ["Bike Helmet", "Bike Light", "Cycling Gloves", "Bike Lock"]),
            "Fitness": (35.0, 0.6, ["Dumbbell Set", "Resistance Bands", "Kettlebell", "Jump Rope"]),
        },
    ),
    "Beauty & Health": (
        ["Aurea", "Botanica", "Pure Glow"],
        {
            "Skincare": (24.0, 0.5, ["Face Serum", "Moisturizer", "Sunscreen", "Cleanser"]),
            "Haircare": (16.0, 0.45, ["Shampoo", "Conditioner", "Hair Oil", "Hair Dryer"]),
            "Fragrances": (59.0, 0.4, ["Eau de Parfum", "Body Mist", "Cologne"]),
            "Supplements": (27.0, 0.35, ["Multivitamin", "Protein Powder", "Omega-3"]),
        },
    ),
    "Toys & Games": (
        ["Playforge", "Tinker", "BrightMinds"],
        {
            "Board Games": (32.0, 0.4, ["Board Game", "Card Game", "Strategy Game"]),
            "Puzzles": (18.0, 0.4, ["Jigsaw Puzzle", "3D Puzzle"]),
            "Building Sets": (45.0, 0.7, ["Building Set", "Robot Kit", "Marble Run"]),
            "Plush": (15.0, 0.35, ["Plush Bear", "Plush Dinosaur", "Plush Unicorn"]),
        },
    ),
    "Books": (
        ["Lighthouse Press", "Paperfox"],
        {
            "Fiction": (16.0, 0.3, ["Novel", "Thriller", "Fantasy Novel"]),
            "Non-fiction": (21.0, 0.3, ["Biography", "History Book", "Business Book"]),
            "Children's": (11.0, 0.3, ["Picture Book", "Activity Book"]),
            "Cookbooks": (26.0, 0.3, ["Cookbook", "Baking Book"]),
        },
    ),
    "Office": (
        ["Officio", "Inkwell"],
        {
            "Stationery": (9.0, 0.5, ["Pen Set", "Sticky Notes", "Desk Organizer"]),
            "Desks & Chairs": (229.0, 0.45, ["Office Chair", "Standing Desk", "Desk Lamp"]),
            "Printers": (149.0, 0.45, ["Inkjet Printer", "Laser Printer", "Ink Cartridge"]),
            "Notebooks": (12.0, 0.35, ["Notebook", "Planner", "Sketchbook"]),
        },
    ),
}
CATEGORY_WEIGHT = {
    "Electronics": 1.3,
    "Home & Kitchen": 1.2,
    "Fashion": 1.4,
    "Sports & Outdoors": 1.0,
    "Beauty & Health": 1.0,
    "Toys & Games": 0.7,
    "Books": 0.6,
    "Office": 0.5,
}
MODELS = ["Pro", "Lite", "Max", "Classic", "Eco", "Plus", "Mini", "Ultra", "Air", "Prime", "One", "Go", "X", "S"]

# country -> (region, state, city, postal code, weight)
GEO: dict[str, list[tuple[str, str, str, str, float]]] = {
    "US": [
        ("West", "California", "Los Angeles", "90012", 6),
        ("West", "California", "San Francisco", "94103", 4),
        ("West", "California", "San Diego", "92101", 2),
        ("West", "Washington", "Seattle", "98101", 3),
        ("West", "Colorado", "Denver", "80202", 2),
        ("East", "New York", "New York City", "10001", 7),
        ("East", "New York", "Buffalo", "14202", 1),
        ("East", "Massachusetts", "Boston", "02108", 2),
        ("East", "Pennsylvania", "Philadelphia", "19103", 3),
        ("Central", "Texas", "Houston", "77002", 3),
        ("Central", "Texas", "Austin", "78701", 2),
        ("Central", "Texas", "Dallas", "75201", 2),
        ("Central", "Illinois", "Chicago", "60601", 4),
        ("South", "Florida", "Miami", "33130", 3),
        ("South", "Florida", "Orlando", "32801", 1),
        ("South", "Georgia", "Atlanta", "30303", 2),
    ],
    "BR": [
        ("Sudeste", "São Paulo", "São Paulo", "01310-100", 9),
        ("Sudeste", "São Paulo", "Campinas", "13010-001", 2),
        ("Sudeste", "Rio de Janeiro", "Rio de Janeiro", "20040-002", 5),
        ("Sudeste", "Minas Gerais", "Belo Horizonte", "30130-010", 3),
        ("Sul", "Rio Grande do Sul", "Porto Alegre", "90010-150", 2),
        ("Sul", "Paraná", "Curitiba", "80010-000", 2),
        ("Nordeste", "Bahia", "Salvador", "40020-000", 2),
        ("Nordeste", "Pernambuco", "Recife", "50010-000", 1),
    ],
    "CA": [
        ("Central Canada", "Ontario", "Toronto", "M5V 2T6", 5),
        ("Central Canada", "Ontario", "Ottawa", "K1P 1J1", 1),
        ("Central Canada", "Quebec", "Montreal", "H2X 1Y4", 3),
        ("Western Canada", "British Columbia", "Vancouver", "V6B 1A1", 3),
        ("Western Canada", "Alberta", "Calgary", "T2P 1J9", 2),
    ],
    "GB": [
        ("England", "Greater London", "London", "SW1A 1AA", 8),
        ("England", "Greater Manchester", "Manchester", "M1 1AE", 2),
        ("England", "West Midlands", "Birmingham", "B1 1BB", 2),
        ("Scotland", "City of Edinburgh", "Edinburgh", "EH1 1YZ", 1),
        ("Wales", "Cardiff", "Cardiff", "CF10 1EP", 1),
    ],
    "DE": [
        ("Süd", "Bayern", "München", "80331", 3),
        ("Süd", "Baden-Württemberg", "Stuttgart", "70173", 2),
        ("Nord", "Hamburg", "Hamburg", "20095", 2),
        ("Ost", "Berlin", "Berlin", "10115", 4),
        ("West", "Nordrhein-Westfalen", "Köln", "50667", 2),
        ("West", "Nordrhein-Westfalen", "Düsseldorf", "40213", 1),
    ],
}
# Country mix by the store's home country (from its time zone).
COUNTRY_MIX = {
    "US": {"US": 0.62, "CA": 0.12, "GB": 0.09, "DE": 0.08, "BR": 0.09},
    "BR": {"BR": 0.80, "US": 0.07, "CA": 0.02, "GB": 0.03, "DE": 0.08},
    "GB": {"GB": 0.60, "DE": 0.15, "US": 0.15, "CA": 0.05, "BR": 0.05},
    "DE": {"DE": 0.30, "GB": 0.25, "US": 0.25, "CA": 0.05, "BR": 0.15},
    "CA": {"CA": 0.55, "US": 0.28, "GB": 0.06, "DE": 0.06, "BR": 0.05},
}
HOME_BY_ZONE = {
    "America/Sao_Paulo": "BR",
    "America/Fortaleza": "BR",
    "America/Recife": "BR",
    "America/Bahia": "BR",
    "America/Manaus": "BR",
    "America/Toronto": "CA",
    "America/Vancouver": "CA",
    "America/Montreal": "CA",
    "Europe/London": "GB",
    "Europe/Berlin": "DE",
}
TAX_RATE = {"US": 0.07, "CA": 0.13, "GB": 0.0, "DE": 0.0, "BR": 0.0}
SEGMENTS = [("Consumer", 52), ("Corporate", 30), ("Home Office", 18)]
FIRST_NAMES = {
    "EN": [
        "James",
        "Mary",
        "John",
        "Patricia",
        "Robert",
        "Jennifer",
        "Michael",
        "Linda",
        "David",
        "Emily",
        "Daniel",
        "Sarah",
        "Chris",
        "Jessica",
        "Matthew",
        "Ashley",
        "Olivia",
        "Liam",
        "Noah",
        "Emma",
        "Ava",
        "Ethan",
        "Sophia",
        "Mason",
        "Chloe",
        "Lucas",
        "Grace",
        "Ryan",
        "Megan",
        "Jack",
    ],
    "PT": [
        "João",
        "Maria",
        "Ana",
        "Pedro",
        "Lucas",
        "Juliana",
        "Gabriel",
        "Beatriz",
        "Rafael",
        "Camila",
        "Mateus",
        "Larissa",
        "Felipe",
        "Fernanda",
        "Bruno",
        "Carolina",
        "Gustavo",
        "Mariana",
        "Thiago",
        "Letícia",
    ],
    "DE": [
        "Lukas",
        "Anna",
        "Leon",
        "Marie",
        "Felix",
        "Sophie",
        "Jonas",
        "Lea",
        "Paul",
        "Hannah",
        "Max",
        "Laura",
        "Finn",
        "Lena",
        "Elias",
        "Mia",
        "Noah",
        "Emilia",
        "Ben",
        "Clara",
    ],
}
LAST_NAMES = {
    "EN": [
        "Smith",
        "Johnson",
        "Williams",
        "Brown",
        "Jones",
        "Miller",
        "Davis",
        "Wilson",
        "Anderson",
        "Taylor",
        "Thomas",
        "Moore",
        "Martin",
        "Jackson",
        "Thompson",
        "White",
        "Harris",
        "Clark",
        "Lewis",
        "Walker",
        "Young",
        "Allen",
        "King",
        "Wright",
        "Scott",
        "Hill",
        "Green",
        "Adams",
        "Baker",
        "Campbell",
    ],
    "PT": [
        "Silva",
        "Santos",
        "Oliveira",
        "Souza",
        "Rodrigues",
        "Ferreira",
        "Alves",
        "Pereira",
        "Lima",
        "Gomes",
        "Costa",
        "Ribeiro",
        "Martins",
        "Carvalho",
        "Almeida",
        "Lopes",
        "Soares",
        "Fernandes",
        "Vieira",
        "Barbosa",
    ],
    "DE": [
        "Müller",
        "Schmidt",
        "Schneider",
        "Fischer",
        "Weber",
        "Meyer",
        "Wagner",
        "Becker",
        "Schulz",
        "Hoffmann",
        "Koch",
        "Richter",
        "Klein",
        "Wolf",
        "Schröder",
        "Neumann",
        "Schwarz",
        "Braun",
        "Zimmermann",
        "Krüger",
    ],
}
LANGUAGE = {"US": "EN", "CA": "EN", "GB": "EN", "BR": "PT", "DE": "DE"}
EMAIL_DOMAINS = ["gmail.com", "outlook.com", "yahoo.com", "icloud.com", "proton.me", "hotmail.com"]
ASCII = str.maketrans(
    {
        "ã": "a",
        "á": "a",
        "â": "a",
        "é": "e",
        "ê": "e",
        "í": "i",
        "ó": "o",
        "ô": "o",
        "ú": "u",
        "ç": "c",
        "ü": "ue",
        "ö": "oe",
        "ä": "ae",
        "ß": "ss",
    }
)

# country -> ([(first name, its e-mail form)], [(last name, its e-mail form)])
NAMES = {
    country: tuple(
        [(n, n.lower().translate(ASCII)) for n in names[LANGUAGE[country]]] for names in (FIRST_NAMES, LAST_NAMES)
    )
    for country in LANGUAGE
}

# Payment methods per customer country: (method, weight, failure rate of one attempt)
PAYMENT_MIX = {
    "BR": [("card", 45, 0.07), ("pix", 30, 0.04), ("boleto", 15, 0.2), ("paypal", 7, 0.06), ("gift_card", 3, 0.03)],
    "default": [("card", 70, 0.08), ("paypal", 22, 0.06), ("gift_card", 5, 0.03), ("pix", 2, 0.04), ("boleto", 1, 0.2)],
}
PAYMENT_STATUS = {"pending": "pending", "cancelled": "failed", "refunded": "refunded"}
FAIL_REASONS = ["card_declined", "insufficient_funds", "expired_card", "fraud_suspected", "timeout", "payment_expired"]
REFUND_REASONS = ["damaged", "not_as_described", "changed_mind", "wrong_size", "late_delivery"]
CHANNELS = [("web", 55), ("mobile", 30), ("marketplace", 15)]
UTMS = [
    ({"source": "google", "medium": "cpc", "campaign": "search-always-on"}, 30),
    ({"source": "google", "medium": "organic"}, 20),
    ({"source": "facebook", "medium": "paid_social", "campaign": "prospecting"}, 14),
    ({"source": "instagram", "medium": "paid_social", "campaign": "retargeting"}, 12),
    ({"source": "newsletter", "medium": "email", "campaign": "weekly-digest"}, 12),
    ({"source": "tiktok", "medium": "paid_social", "campaign": "creators"}, 6),
    ({"source": "affiliate", "medium": "referral", "campaign": "partners"}, 6),
]
REFERRERS = {
    "google": "https://www.google.com/",
    "facebook": "https://www.facebook.com/",
    "instagram": "https://www.instagram.com/",
    "tiktok": "https://www.tiktok.com/",
    "newsletter": "https://mail.google.com/",
    "affiliate": "https://www.bestdeals-blog.com/",
}
DEVICES = [
    ({"type": "desktop", "os": "Windows", "browser": "Chrome"}, 20),
    ({"type": "desktop", "os": "Windows", "browser": "Edge"}, 6),
    ({"type": "desktop", "os": "macOS", "browser": "Safari"}, 8),
    ({"type": "desktop", "os": "macOS", "browser": "Chrome"}, 7),
    ({"type": "desktop", "os": "Linux", "browser": "Firefox"}, 2),
    ({"type": "mobile", "os": "iOS", "browser": "Safari"}, 22),
    ({"type": "mobile", "os": "Android", "browser": "Chrome"}, 26),
    ({"type": "mobile", "os": "Android", "browser": "Samsung Internet"}, 3),
    ({"type": "tablet", "os": "iPadOS", "browser": "Safari"}, 4),
    ({"type": "tablet", "os": "Android", "browser": "Chrome"}, 2),
]
APP_DEVICES = [
    ({"type": "mobile", "os": "iOS", "browser": "App"}, 45),
    ({"type": "mobile", "os": "Android", "browser": "App"}, 55),
]
ZERO_RESULT_QUERIES = [
    "unicorn onesie",
    "hoverboard",
    "ps6",
    "gift card mexico",
    "hedphones",
    "runing shoos",
    "yoga matt",
    "iphone 27",
    "leather sofa",
    "lawn mower",
    "wedding dress",
    "fidget spinner xl",
    "drone with camera",
    "ebike battery 72v",
]
REVIEW_TEXT = {
    5: [
        "Absolutely love it, exactly as described.",
        "Great quality, fast delivery. Would buy again!",
        "Five stars, my second one already.",
        "Exceeded my expectations.",
    ],
    4: [
        "Very good, minor issues with the packaging.",
        "Good value for the price.",
        "Works well, shipping took a while.",
    ],
    3: ["It's okay. Does the job.", "Average quality, fair price.", "Not bad, not great."],
    2: ["Smaller than expected.", "Quality could be better for the price.", "Arrived late and a bit scratched."],
    1: ["Broke after two days.", "Not as described, returning it.", "Terrible, would not recommend."],
}
RATINGS = [(5, 45), (4, 28), (3, 12), (2, 7), (1, 8)]

# Order volume: Monday = 0. Online stores peak early in the week and dip on Saturday.
WEEKDAY_FACTOR = [1.14, 1.08, 1.03, 1.0, 0.95, 0.80, 0.90]
MONTH_FACTOR = [0.85, 0.86, 0.95, 0.96, 1.0, 0.88, 0.84, 0.90, 0.97, 1.04, 1.40, 1.35]
# Orders (and sessions) per local hour.
HOUR_WEIGHTS = [
    0.6,
    0.35,
    0.2,
    0.15,
    0.12,
    0.15,
    0.3,
    0.6,
    1.0,
    1.4,
    1.6,
    1.7,
    1.8,
    1.7,
    1.6,
    1.5,
    1.5,
    1.6,
    1.8,
    2.1,
    2.3,
    2.2,
    1.7,
    1.1,
]

# Customers: probability of coming back at all, then of each further repeat.
P_RETURN = 0.66
P_CONTINUE = 0.71
# Sessions: share ending in a purchase, then (of the others) reaching checkout / cart / product pages.
P_PURCHASE_SESSION = 0.10
BROWSE_DEPTH = (0.056, 0.167, 0.556)  # cumulative: checkout, add_to_cart, product_view
P_LOGGED_IN = 0.35
P_SEARCH = 0.35
P_ZERO_RESULTS = 0.12
