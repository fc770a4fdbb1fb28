"""Realistic seed data for sandboxes: Chinese and Western companies, the same for every run.

Every sandbox seeds its vendor's records from these, so that the demo shows the same
customers in every CRM and ERP, and tests and benchmarks can rebuild a sandbox's state
from `(count, seed)` alone. A Chinese company carries a unified social credit code with a
valid GB 32100 check character; a Western one a VAT number in its country's shape.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass

from hub.mapping.transforms import uscc_check_char


@dataclass(frozen=True)
class Product:
    """A catalogue item every sandbox sells under the same code, so that an order line made in
    one vendor finds its product in another (the hub matches products by code)."""

    code: str
    name: str
    price: float


PRODUCTS = (
    Product("FURN_7800", "Desk Combination", 450.0), Product("FURN_8220", "Four Person Desk", 2350.0),
    Product("E-COM07", "Large Cabinet", 320.0), Product("FURN_6666", "Acoustic Bloc Screens", 295.0),
    Product("DESK0004", "Customizable Desk", 800.0), Product("FURN_1118", "Corner Desk Left Sit", 85.0),
    Product("SRV_INST", "Installation", 120.0),
)


@dataclass(frozen=True)
class Company:
    """One customer as a vendor's admin would have typed it, before any vendor shape."""

    number: int
    name: str
    tax_id: str
    email: str
    phone: str
    website: str
    street: str
    city: str
    state: str
    postal_code: str
    country: str       # display name, as the vendors show it
    country_code: str  # ISO 3166-1 alpha-2
    industry: str
    contact_first: str
    contact_last: str


@dataclass(frozen=True)
class _Place:
    city: str
    state: str
    postal: str
    country: str
    code: str
    streets: tuple[str, ...]
    phone_prefix: str


_CN_PLACES = (
    _Place("上海市", "上海", "200120", "中国", "CN", ("浦东新区张江路", "徐汇区漕溪北路", "静安区南京西路"), "+86 21"),
    _Place("北京市", "北京", "100080", "中国", "CN", ("海淀区中关村大街", "朝阳区建国路", "东城区东长安街"), "+86 10"),
    _Place("深圳市", "广东", "518057", "中国", "CN", ("南山区科技园南路", "福田区深南大道"), "+86 755"),
    _Place("杭州市", "浙江", "310012", "中国", "CN", ("西湖区文三路", "滨江区网商路"), "+86 571"),
    _Place("成都市", "四川", "610041", "中国", "CN", ("高新区天府大道", "锦江区红星路"), "+86 28"),
)
_CN_CORES = ("华信", "恒达", "瑞丰", "金桥", "宏图", "新锐", "天成", "博远", "嘉禾", "同创", "鼎盛", "汇通")
_CN_TRADES = ("科技", "贸易", "机械", "电子", "物流", "食品", "医药", "建材")
_CN_SURNAMES = ("王", "李", "张", "刘", "陈", "杨", "赵", "黄", "周", "吴")
_CN_GIVEN = ("伟", "芳", "娜", "敏", "静", "磊", "洋", "艳", "勇", "军", "杰", "婷")
_CN_PINYIN = ("huaxin", "hengda", "ruifeng", "jinqiao", "hongtu", "xinrui", "tiancheng", "boyuan",
              "jiahe", "tongchuang", "dingsheng", "huitong")

_WEST_PLACES = (  # phone prefixes leave the local part at 8 digits (FR: 8 after "+33 4"; US: 7 after "+1 512")
    _Place("München", "Bayern", "80331", "Germany", "DE", ("Leopoldstraße", "Sendlinger Straße"), "+49 89"),
    _Place("Hamburg", "Hamburg", "20095", "Germany", "DE", ("Mönckebergstraße", "Jungfernstieg"), "+49 40"),
    _Place("London", "England", "EC1A 1BB", "United Kingdom", "GB", ("King Street", "Fleet Street"), "+44 20"),
    _Place("Lyon", "Auvergne-Rhône-Alpes", "69002", "France", "FR", ("Rue de la République", "Quai Saint-Antoine"), "+33 4"),
    _Place("Austin", "TX", "78701", "United States", "US", ("Congress Avenue", "Lavaca Street"), "+1 512 5"),
)
_WEST_CORES = ("Northwind", "Acme", "Globex", "Initech", "Umbrella", "Stark", "Wayne", "Vandelay",
               "Hooli", "Tyrell", "Cyberdyne", "Soylent")
_WEST_TRADES = ("Logistics", "Components", "Foods", "Pharma", "Machines", "Trading", "Software", "Materials")
_WEST_FORMS = {"DE": "GmbH", "GB": "Ltd", "FR": "SARL", "US": "Inc."}
_WEST_FIRST = ("Anna", "James", "Lukas", "Emma", "Oliver", "Sophie", "Noah", "Mia", "Louis", "Grace")
_WEST_LAST = ("Müller", "Smith", "Schmidt", "Dubois", "Johnson", "Weber", "Martin", "Brown")
_INDUSTRIES = ("Manufacturing", "Retail", "Technology", "Healthcare", "Transportation", "Food & Beverage")


def uscc(rng: random.Random) -> str:
    """A unified social credit code (GB 32100-2015) with a valid check character."""
    region = rng.choice(("310115", "110108", "440305", "330106", "510107"))
    body = "91" + region + "".join(rng.choice("0123456789ABCDEFGHJKLMNPQRTUWXY") for _ in range(9))
    return body + uscc_check_char(body)


def _vat(rng: random.Random, code: str) -> str:
    digits = "".join(rng.choice("0123456789") for _ in range(9))
    return {"DE": f"DE{digits}", "GB": f"GB{digits}", "FR": f"FR{rng.randint(10, 99)}{digits}",
            "US": f"{digits[:2]}-{digits[2:]}"}[code]


def company(number: int, rng: random.Random) -> Company:
    """Company number `number`; every third one is Western, the rest Chinese."""
    return _western(number, rng) if number % 3 == 2 else _chinese(number, rng)


def _chinese(number: int, rng: random.Random) -> Company:
    place = rng.choice(_CN_PLACES)
    core_index = rng.randrange(len(_CN_CORES))
    trade = rng.choice(_CN_TRADES)
    pinyin = _CN_PINYIN[core_index]
    return Company(
        number=number,
        name=f"{place.city[:-1]}{_CN_CORES[core_index]}{trade}有限公司（{number}）",
        tax_id=uscc(rng),
        email=f"sales{number}@{pinyin}.com.cn",
        phone=f"{place.phone_prefix} {rng.randint(5000, 8999)} {rng.randint(1000, 9999)}",
        website=f"https://www.{pinyin}{number}.cn",
        street=f"{rng.choice(place.streets)}{rng.randint(1, 999)}号",
        city=place.city, state=place.state, postal_code=place.postal,
        country=place.country, country_code=place.code,
        industry=rng.choice(_INDUSTRIES),
        contact_first=rng.choice(_CN_GIVEN), contact_last=rng.choice(_CN_SURNAMES),
    )


def _western(number: int, rng: random.Random) -> Company:
    place = rng.choice(_WEST_PLACES)
    core = rng.choice(_WEST_CORES)
    trade = rng.choice(_WEST_TRADES)
    domain = f"{core.lower()}-{trade.lower()}{number}"
    tld = {"DE": "de", "GB": "co.uk", "FR": "fr", "US": "com"}[place.code]
    return Company(
        number=number,
        name=f"{core} {trade} {_WEST_FORMS[place.code]} ({number})",
        tax_id=_vat(rng, place.code),
        email=f"orders@{domain}.{tld}",
        phone=f"{place.phone_prefix} {rng.randint(1000, 9999)} {rng.randint(1000, 9999)}"
        if place.code != "US" else f"{place.phone_prefix}{rng.randint(10, 99)} {rng.randint(1000, 9999)}",
        website=f"https://{domain}.{tld}",
        street=f"{rng.randint(1, 200)} {rng.choice(place.streets)}" if place.code in ("GB", "US")
        else f"{rng.choice(place.streets)} {rng.randint(1, 200)}",
        city=place.city, state=place.state, postal_code=place.postal,
        country=place.country, country_code=place.code,
        industry=rng.choice(_INDUSTRIES),
        contact_first=rng.choice(_WEST_FIRST), contact_last=rng.choice(_WEST_LAST),
    )


def companies(count: int, seed: int = 7, start: int = 1) -> Iterator[Company]:
    """`count` companies numbered from `start`; company number n is the same for one `seed`
    whatever `start` is, so that two sandboxes seeded with overlapping ranges share the
    companies of the overlap (the same customer in a CRM and an ERP, as on day one)."""
    rng = random.Random(seed)
    for number in range(1, start):  # draw the companies before `start`, to reach n's part of the stream
        company(number, rng)
    for number in range(start, start + count):
        yield company(number, rng)
