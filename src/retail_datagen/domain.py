"""Domain vocabularies shared by master data, facts and validation.

Categorical columns are carried through generation as small integer codes into these tuples
(code = position), and become strings only when a batch is built.
"""

from __future__ import annotations

REGIONS: tuple[str, ...] = ("Northeast", "Southeast", "Midwest", "Southwest", "West")
REGION_STATES: dict[str, tuple[str, ...]] = {
    "Northeast": ("CT", "DC", "DE", "MA", "MD", "ME", "NH", "NJ", "NY", "PA", "RI", "VT"),
    "Southeast": ("AL", "AR", "FL", "GA", "KY", "LA", "MS", "NC", "SC", "TN", "VA", "WV"),
    "Midwest": ("IA", "IL", "IN", "KS", "MI", "MN", "MO", "ND", "NE", "OH", "SD", "WI"),
    "Southwest": ("AZ", "NM", "OK", "TX"),
    "West": ("AK", "CA", "CO", "HI", "ID", "MT", "NV", "OR", "UT", "WA", "WY"),
}
STATE_REGION: dict[str, str] = {s: r for r, states in REGION_STATES.items() for s in states}

LOCATION_TYPES: tuple[str, ...] = ("URBAN", "SUBURBAN", "RURAL")
VOLUME_CLASSES: tuple[str, ...] = ("flagship", "high_volume", "medium_volume", "low_volume", "kiosk")
STORE_FORMATS: tuple[str, ...] = ("hypermarket", "superstore", "standard", "neighborhood", "express")
OPERATING_HOURS: tuple[str, ...] = ("24/7", "6am-midnight", "8am-10pm", "9am-9pm")
OPEN_CLOSE_HOURS: dict[str, tuple[int, int]] = {
    "24/7": (0, 24),
    "6am-midnight": (6, 24),
    "8am-10pm": (8, 22),
    "9am-9pm": (9, 21),
}
TRUCK_TYPES: tuple[str, ...] = ("DC_FLEET", "POOL", "SUPPLIER")
SHOPPER_SEGMENTS: tuple[str, ...] = (
    "BUDGET_CONSCIOUS", "CONVENIENCE_FOCUSED", "QUALITY_SEEKER", "BRAND_LOYAL",
)
SHOPPER_SEGMENT_P: tuple[float, ...] = (0.35, 0.25, 0.20, 0.20)
MOBILITY_SEGMENTS: tuple[str, ...] = (
    "REGULAR", "COMMUTER", "BUSINESS_TRAVELER", "TOURIST", "SNOWBIRD",
)
MOBILITY_SEGMENT_P: tuple[float, ...] = (0.80, 0.10, 0.05, 0.03, 0.02)
BASKET_CATEGORIES: tuple[str, ...] = (
    "food", "beverages", "household", "personal_care", "electronics", "clothing",
    "home_garden", "other",
)
TAXABILITY: tuple[str, ...] = ("TAXABLE", "REDUCED_RATE", "NON_TAXABLE")
TAXABILITY_FACTOR: tuple[int, ...] = (100, 50, 0)

IN_STORE_TENDERS: tuple[str, ...] = ("CREDIT_CARD", "DEBIT_CARD", "CASH", "MOBILE_PAY")
ONLINE_TENDERS: tuple[str, ...] = ("CREDIT_CARD", "DEBIT_CARD", "PAYPAL", "OTHER")
PAYMENT_METHODS: tuple[str, ...] = (
    "CASH", "CREDIT_CARD", "DEBIT_CARD", "MOBILE_PAY", "PAYPAL", "OTHER",
)
DECLINE_REASONS: tuple[str, ...] = (
    "INSUFFICIENT_FUNDS", "CARD_EXPIRED", "INVALID_CVV", "NETWORK_ERROR", "FRAUD_SUSPECTED",
    "CARD_BLOCKED", "LIMIT_EXCEEDED",
)
PROMO_CODES: tuple[str, ...] = (
    "SAVE10", "SAVE15", "SAVE20", "SAVE25", "TAKE5", "TAKE10", "BOGO50", "CLEARANCE30",
    "CLEARANCE50", "BFRIDAY30", "BFRIDAY40", "SUMMER25", "BACKTOSCHOOL", "HOLIDAY20", "NEWYEAR15",
)
ONLINE_PROMO_CODES: tuple[str, ...] = ("PROMO5", "PROMO10", "PROMO20")
FULFILLMENT_MODES: tuple[str, ...] = ("SHIP_FROM_DC", "SHIP_FROM_STORE", "BOPIS")
TRUCK_STATUSES: tuple[str, ...] = (
    "SCHEDULED", "LOADING", "IN_TRANSIT", "ARRIVED", "UNLOADING", "COMPLETED",
)
FOOT_TRAFFIC_ZONES: tuple[str, ...] = (
    "ENTRANCE_MAIN", "ENTRANCE_SIDE", "AISLES_A", "AISLES_B", "CHECKOUT",
)
BLE_ZONES: tuple[str, ...] = ("ENTRANCE", "ELECTRONICS", "GROCERY", "CLOTHING", "CHECKOUT")
MARKETING_CHANNELS: tuple[str, ...] = (
    "FACEBOOK", "GOOGLE", "EMAIL", "INSTAGRAM", "YOUTUBE", "DISPLAY", "SOCIAL", "SEARCH",
)
CAMPAIGN_TYPES: tuple[str, ...] = (
    "seasonal_sale", "product_launch", "loyalty_program", "flash_sale",
)
DEVICES: tuple[str, ...] = ("MOBILE", "DESKTOP", "TABLET")

# Type rank for ties at the same event_ts in both inventory txn tables (fact-tables.md §4).
TXN_TYPE_RANK: dict[str, int] = {
    "INBOUND_SHIPMENT": 0,
    "RETURN": 1,
    "ADJUSTMENT": 2,
    "SALE": 3,
    "DAMAGED": 4,
    "OUTBOUND_SHIPMENT": 5,
}
TXN_TYPES_BY_RANK: tuple[str, ...] = tuple(sorted(TXN_TYPE_RANK, key=TXN_TYPE_RANK.__getitem__))
