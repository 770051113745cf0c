"""A synthetic population register for the local stack and the tests, generated deterministically.

Every identity number here is a synthetic test number (month + 80, as Skatteetaten's test register
Tenor issues them). No real person can hold one, and a stage that refuses synthetic numbers refuses
them all; so the seed can be printed, logged and committed without ever pointing at a real person,
whatever common names and real post towns it happens to combine.

The same (year, count, seed) always gives the same list: one local `random.Random` seeded with a
string (which `random` hashes with SHA-512, unlike the salted `hash()`), no clock, no global state.
A middle name (mellomnavn) is kept at the end of `given_name`, where `Person.name` shows it.

One person is not generated: the walkthrough person (`WALKTHROUGH`), whose number the README's
walkthrough and the sample events (events/) use. The generated persons change with the year (their
ages are reckoned from it); this one is in the seed of every year, as its first adult (the one the
banner shows), born on a fixed date that keeps them an eligible adult for decades.
"""

from __future__ import annotations

import calendar
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum
from typing import Final

from minid.domain.identity import (
    Gender,
    IdentityNumberKind,
    compose_identity_number,
    individual_numbers_for,
)
from minid.domain.population import ForeignAddress, NorwegianAddress, Person, PersonStatus


class Category(StrEnum):
    ADULT = "adult"
    D_NUMBER_NORWAY = "dnr-norway"
    D_NUMBER_ABROAD = "dnr-abroad"
    CHILD = "child"
    TURNS_13 = "turns-13"
    DECEASED = "deceased"
    NO_ADDRESS = "no-address"
    EMIGRATED = "emigrated"
    RULE_2032 = "rule-2032"


@dataclass(frozen=True, slots=True)
class SeededPerson:
    identity_number: str
    person: Person
    category: Category


_SHARES: Final[dict[Category, int]] = {  # per 1,200 persons
    Category.ADULT: 840,
    Category.D_NUMBER_NORWAY: 90,
    Category.D_NUMBER_ABROAD: 80,
    Category.CHILD: 70,
    Category.TURNS_13: 25,
    Category.DECEASED: 40,
    Category.NO_ADDRESS: 20,
    Category.EMIGRATED: 10,
    Category.RULE_2032: 25,
}
_SHARES_TOTAL: Final = sum(_SHARES.values())

# The README's walkthrough and events/ name this number: keep them in step. (Synthetic, as all here.)
WALKTHROUGH: Final = SeededPerson(
    "18838417392",
    Person(
        "Andreas Ståle", "Tveit", date(1984, 3, 18), IdentityNumberKind.FODSELSNUMMER, PersonStatus.RESIDENT,
        address=NorwegianAddress("Myrveien 1 H0304", "2900", "FAGERNES"),
    ),
    Category.ADULT,
)  # fmt: skip

# --- Norwegian names and addresses ------------------------------------------------------------------

_MALE: Final = (
    "Ola", "Per", "Lars", "Knut", "Bjørn", "Håkon", "Sindre", "Øystein", "Mathias", "Jakob", "Aksel",
    "Jan", "Hans", "Arne", "Kjell", "Svein", "Tor", "Geir", "Terje", "Odd", "Rune", "Trond", "Eirik",
    "Magnus", "Henrik", "Sander", "Emil", "Filip", "Oskar", "Isak", "Tobias", "Elias", "Jonas",
    "Kristoffer", "Martin", "Andreas", "Ståle", "Steinar", "Asbjørn", "Gunnar", "Harald", "Sigurd",
    "Vegard", "Jørgen", "Halvor", "Torbjørn", "Espen", "Ivar", "Olav", "Leif", "Nils", "Erik",
)  # fmt: skip
_FEMALE: Final = (
    "Kari", "Åse", "Sølvi", "Ingrid", "Solveig", "Tiril", "Nora", "Emma", "Ida", "Sigrid", "Astrid",
    "Marit", "Liv", "Anne", "Inger", "Berit", "Randi", "Hilde", "Tone", "Mette", "Hanne", "Silje",
    "Ingeborg", "Ragnhild", "Gro", "Turid", "Bjørg", "Gunhild", "Synnøve", "Maren", "Thea", "Sofie",
    "Ella", "Maja", "Frida", "Vilde", "Ingvild", "Eli", "Torill", "Kristin", "Marte", "Guro", "Hege",
    "Siri", "Oda", "Selma", "Aurora", "Åshild", "Målfrid", "Vigdis",
)  # fmt: skip
_FAMILY: Final = (
    "Hansen", "Johansen", "Olsen", "Larsen", "Andersen", "Pedersen", "Nilsen", "Kristiansen", "Jensen",
    "Karlsen", "Johnsen", "Pettersen", "Eriksen", "Berg", "Haugen", "Hagen", "Dahl", "Halvorsen", "Lund",
    "Sørensen", "Moen", "Strand", "Solberg", "Eide", "Bakken", "Lie", "Nygård", "Sæther", "Ødegård",
    "Bøe", "Rønning", "Myklebust", "Haugland", "Næss", "Jakobsen", "Iversen", "Andreassen", "Mathisen",
    "Gundersen", "Fredriksen", "Holm", "Berge", "Amundsen", "Knutsen", "Lunde", "Lien", "Aas", "Myhre",
    "Tveit", "Vik", "Brekke", "Hauge", "Sandvik", "Aasen", "Løken", "Ruud", "Engen", "Nordby", "Foss",
    "Aune", "Sunde", "Tangen", "Hovland", "Bjørnstad", "Vold", "Skogen", "Birkeland", "Sæbø", "Hoel",
)  # fmt: skip
_STREETS: Final = (
    "Storgata", "Kirkegata", "Skolegata", "Kongens gate", "Dronningens gate", "Parkveien", "Skogveien",
    "Bjørkeveien", "Granveien", "Furuveien", "Fjellveien", "Sjøgata", "Strandgata", "Havnegata",
    "Torggata", "Nygata", "Jernbanegata", "Solbakken", "Bakkegata", "Åsveien", "Elvegata", "Markveien",
    "Prestegårdsveien", "Kirkeveien", "Nordre gate", "Søndre gate", "Eikeveien", "Lønneveien",
    "Rognveien", "Hasselveien", "Løkkeveien", "Fjordveien", "Sjøveien", "Enggata", "Myrveien",
    "Sætervegen", "Kløverveien", "Blåbærstien", "Tyttebærveien", "Måkeveien", "Ringveien", "Østre gate",
)  # fmt: skip
_POST_TOWNS: Final = (  # real postal codes with their post towns, spread over the country
    ("0150", "OSLO"), ("0250", "OSLO"), ("0368", "OSLO"), ("0484", "OSLO"), ("0557", "OSLO"),
    ("5003", "BERGEN"), ("5015", "BERGEN"), ("5063", "BERGEN"), ("7010", "TRONDHEIM"),
    ("7030", "TRONDHEIM"), ("4006", "STAVANGER"), ("4306", "SANDNES"), ("9008", "TROMSØ"),
    ("3015", "DRAMMEN"), ("1606", "FREDRIKSTAD"), ("1767", "HALDEN"), ("4608", "KRISTIANSAND S"),
    ("4515", "MANDAL"), ("4836", "ARENDAL"), ("4890", "GRIMSTAD"), ("4790", "LILLESAND"),
    ("6002", "ÅLESUND"), ("6100", "VOLDA"), ("6413", "MOLDE"), ("6800", "FØRDE"), ("6900", "FLORØ"),
    ("5700", "VOSS"), ("5501", "HAUGESUND"), ("4370", "EGERSUND"), ("8006", "BODØ"), ("8300", "SVOLVÆR"),
    ("8400", "SORTLAND"), ("8800", "SANDNESSJØEN"), ("9405", "HARSTAD"), ("9510", "ALTA"),
    ("9600", "HAMMERFEST"), ("9800", "VADSØ"), ("9900", "KIRKENES"), ("2317", "HAMAR"),
    ("2406", "ELVERUM"), ("2609", "LILLEHAMMER"), ("2815", "GJØVIK"), ("2900", "FAGERNES"),
    ("3103", "TØNSBERG"), ("3256", "LARVIK"), ("3724", "SKIEN"), ("3921", "PORSGRUNN"),
    ("3616", "KONGSBERG"), ("3500", "HØNEFOSS"), ("1337", "SANDVIKA"), ("2000", "LILLESTRØM"),
    ("2050", "JESSHEIM"), ("1400", "SKI"), ("1440", "DRØBAK"), ("1530", "MOSS"), ("7500", "STJØRDAL"),
    ("7600", "LEVANGER"), ("7800", "NAMSOS"), ("7374", "RØROS"),
)  # fmt: skip

# --- Countries of D-number holders and of emigrants -----------------------------------------------


@dataclass(frozen=True, slots=True)
class _Country:
    name: str  # in English, as ForeignAddress wants it
    code: str  # ISO 3166-1 alpha-2
    street_line: str  # a str.format template over street, number, flat and floor
    places: tuple[tuple[str, tuple[str, ...]], ...]  # a street, and the address lines after it
    male: tuple[str, ...] = ()
    female: tuple[str, ...] = ()
    family: tuple[str, ...] = ()  # "Kowalski/Kowalska": male and female forms; one form for both


_POLAND: Final = _Country(
    "Poland", "PL", "{street} {number}/{flat}",
    (("ul. Długa", ("80-831 GDAŃSK",)), ("ul. Piotrkowska", ("90-106 ŁÓDŹ",)),
     ("ul. Marszałkowska", ("00-624 WARSZAWA",)), ("ul. Floriańska", ("31-019 KRAKÓW",)),
     ("ul. Świdnicka", ("50-066 WROCŁAW",))),
    ("Piotr", "Krzysztof", "Tomasz", "Paweł", "Marcin", "Michał", "Łukasz", "Jakub", "Grzegorz", "Wojciech"),
    ("Agnieszka", "Katarzyna", "Małgorzata", "Joanna", "Magdalena", "Monika", "Anna", "Ewa", "Justyna"),
    ("Kowalski/Kowalska", "Nowak", "Wiśniewski/Wiśniewska", "Wójcik", "Kamiński/Kamińska",
     "Lewandowski/Lewandowska", "Zieliński/Zielińska", "Szymański/Szymańska", "Woźniak",
     "Dąbrowski/Dąbrowska"),
)  # fmt: skip
_LITHUANIA: Final = _Country(
    "Lithuania", "LT", "{street} {number}-{flat}",
    (("Gedimino pr.", ("LT-01103 VILNIUS",)), ("Laisvės al.", ("LT-44250 KAUNAS",)),
     ("Taikos pr.", ("LT-91182 KLAIPĖDA",)), ("Vilniaus g.", ("LT-76281 ŠIAULIAI",))),
    ("Tomas", "Mantas", "Darius", "Andrius", "Paulius", "Vytautas", "Linas", "Mindaugas"),
    ("Rūta", "Agnė", "Ieva", "Greta", "Eglė", "Jurgita", "Inga", "Asta"),
    ("Kazlauskas/Kazlauskienė", "Jankauskas/Jankauskienė", "Petrauskas/Petrauskienė",
     "Stankevičius/Stankevičienė", "Vasiliauskas/Vasiliauskienė", "Žukauskas/Žukauskienė", "Butkus/Butkienė"),
)  # fmt: skip
_SWEDEN: Final = _Country(
    "Sweden", "SE", "{street} {number}",
    (("Drottninggatan", ("111 51 STOCKHOLM",)), ("Kungsportsavenyen", ("411 36 GÖTEBORG",)),
     ("Södergatan", ("211 34 MALMÖ",)), ("Kungsgatan", ("753 21 UPPSALA",)), ("Storgatan", ("903 26 UMEÅ",))),
    ("Erik", "Anders", "Johan", "Mikael", "Fredrik", "Gustav", "Axel", "Olof"),
    ("Karin", "Elin", "Sara", "Linnea", "Ebba", "Elsa", "Malin", "Kerstin"),
    ("Lindqvist", "Andersson", "Johansson", "Karlsson", "Nilsson", "Eriksson", "Persson", "Bergström"),
)  # fmt: skip
_LATVIA: Final = _Country(
    "Latvia", "LV", "{street} {number}-{flat}",
    (("Brīvības iela", ("LV-1050 RĪGA",)), ("Rīgas iela", ("LV-5401 DAUGAVPILS",)),
     ("Lielā iela", ("LV-3001 JELGAVA",))),
    ("Jānis", "Andris", "Māris", "Edgars", "Kristaps", "Raivis", "Artūrs", "Uldis"),
    ("Ilze", "Inese", "Līga", "Kristīne", "Dace", "Anete", "Zane", "Laura"),
    ("Bērziņš/Bērziņa", "Kalniņš/Kalniņa", "Ozoliņš/Ozoliņa", "Jansons/Jansone", "Liepiņš/Liepiņa",
     "Krūmiņš/Krūmiņa"),
)  # fmt: skip
_GERMANY: Final = _Country(
    "Germany", "DE", "{street} {number}",
    (("Friedrichstraße", ("10117 BERLIN",)), ("Schillerstraße", ("80336 MÜNCHEN",)),
     ("Mönckebergstraße", ("20095 HAMBURG",)), ("Hauptstraße", ("69117 HEIDELBERG",))),
    ("Lukas", "Maximilian", "Felix", "Stefan", "Thomas", "Michael", "Matthias", "Jürgen"),
    ("Julia", "Lena", "Katharina", "Sabine", "Petra", "Claudia", "Lea", "Hannah"),
    ("Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker", "Hoffmann"),
)  # fmt: skip
_UKRAINE: Final = _Country(
    "Ukraine", "UA", "{street} {number}, kv. {flat}",
    (("vul. Khreshchatyk", ("KYIV", "01001")), ("prosp. Svobody", ("LVIV", "79000")),
     ("vul. Deribasivska", ("ODESA", "65000")), ("vul. Sumska", ("KHARKIV", "61000"))),
    ("Oleksandr", "Andrii", "Serhii", "Dmytro", "Mykola", "Taras", "Yurii", "Bohdan", "Volodymyr"),
    ("Olena", "Iryna", "Nataliia", "Oksana", "Tetiana", "Yuliia", "Kateryna", "Svitlana", "Anastasiia"),
    ("Shevchenko", "Kovalenko", "Bondarenko", "Tkachenko", "Kravchenko", "Melnyk", "Boiko", "Oliinyk"),
)  # fmt: skip
_ROMANIA: Final = _Country(
    "Romania", "RO", "{street} nr. {number}",
    (("Str. Lipscani", ("030033 BUCUREȘTI",)), ("Bd. Eroilor", ("400129 CLUJ-NAPOCA",)),
     ("Str. Lăpușneanu", ("700057 IAȘI",)), ("Str. Republicii", ("500030 BRAȘOV",))),
    ("Andrei", "Alexandru", "Ionuț", "Mihai", "Cristian", "Florin", "Adrian", "Bogdan"),
    ("Elena", "Ioana", "Andreea", "Mihaela", "Cristina", "Gabriela", "Daniela", "Ana"),
    ("Popescu", "Ionescu", "Popa", "Dumitru", "Stoica", "Gheorghe", "Rusu", "Munteanu"),
)  # fmt: skip
_PHILIPPINES: Final = _Country(
    "Philippines", "PH", "{number} {street}",
    (("Rizal Avenue", ("Santa Cruz", "1003 MANILA")), ("Colon Street", ("6000 CEBU CITY",)),
     ("Session Road", ("2600 BAGUIO CITY",)), ("Mabini Street", ("Poblacion", "8000 DAVAO CITY"))),
    ("Jose", "Juan", "Mark", "Ramon", "Carlo", "Rodel", "Paolo", "Jericho"),
    ("Maria", "Angelica", "Jocelyn", "Rowena", "Marites", "Analyn", "Liza", "Kristine"),
    ("Santos", "Reyes", "Cruz", "Bautista", "Garcia", "Mendoza", "Dela Cruz", "Villanueva", "Aquino"),
)  # fmt: skip
_DENMARK: Final = _Country(
    "Denmark", "DK", "{street} {number}, {floor}. tv.",
    (("Vesterbrogade", ("1620 KØBENHAVN V",)), ("Søndergade", ("8000 AARHUS C",)),
     ("Vestergade", ("5000 ODENSE C",)), ("Boulevarden", ("9000 AALBORG",))),
    ("Mads", "Rasmus", "Søren", "Frederik", "Mikkel", "Christian", "Niels", "Kasper"),
    ("Kirsten", "Lone", "Pernille", "Louise", "Camilla", "Freja", "Signe", "Mette"),
    ("Nielsen", "Jensen", "Hansen", "Pedersen", "Christensen", "Rasmussen", "Jørgensen", "Madsen"),
)  # fmt: skip
_UNITED_KINGDOM: Final = _Country(
    "United Kingdom", "GB", "{number} {street}",
    (("High Street", ("OXFORD", "OX1 4AP")), ("Deansgate", ("MANCHESTER", "M3 2BW")),
     ("Princes Street", ("EDINBURGH", "EH2 2ER")), ("Bold Street", ("LIVERPOOL", "L1 4DS"))),
    ("James", "Oliver", "Daniel", "William", "George", "Harry", "David", "Richard"),
    ("Sarah", "Emily", "Charlotte", "Sophie", "Rebecca", "Lucy", "Olivia", "Jessica"),
    ("Smith", "Jones", "Williams", "Taylor", "Brown", "Davies", "Evans", "Wilson", "Roberts"),
)  # fmt: skip
_SPAIN: Final = _Country(
    "Spain", "ES", "{street} {number}, {floor}º",
    (("Avenida Ramón y Cajal", ("29640 FUENGIROLA", "MÁLAGA")),
     ("Calle del Mar", ("03580 L'ALFÀS DEL PI", "ALICANTE"))),
)  # fmt: skip
_UNITED_STATES: Final = _Country(
    "United States", "US", "{number} {street}",
    (("Ballard Avenue NW", ("SEATTLE WA 98107",)), ("Washington Avenue", ("MINNEAPOLIS MN 55401",))),
)  # fmt: skip

# Where D-number holders come from, weighted roughly as in Norway's register.
_D_NUMBER_COUNTRIES: Final = (
    (_POLAND, 30), (_LITHUANIA, 18), (_SWEDEN, 12), (_UKRAINE, 10), (_GERMANY, 8), (_LATVIA, 6),
    (_ROMANIA, 6), (_PHILIPPINES, 5), (_DENMARK, 5), (_UNITED_KINGDOM, 5),
)  # fmt: skip
_EMIGRATION: Final = ((_SWEDEN, 4), (_SPAIN, 3), (_DENMARK, 2), (_UNITED_KINGDOM, 2), (_UNITED_STATES, 2))


def given_names(gender: Gender) -> frozenset[str]:
    """Every given name of this gender that the generator uses, Norwegian and foreign."""
    if gender is Gender.MALE:
        return frozenset(_MALE).union(*(country.male for country, _ in _D_NUMBER_COUNTRIES))
    return frozenset(_FEMALE).union(*(country.female for country, _ in _D_NUMBER_COUNTRIES))


def category_counts(count: int) -> dict[Category, int]:
    """How many persons of each category `count` persons hold: the shares per 1,200, scaled."""
    if count < len(Category):
        raise ValueError(f"a population has at least {len(Category)} persons, one of each category")
    counts = {category: share * count // _SHARES_TOTAL for category, share in _SHARES.items()}
    by_remainder = sorted(Category, key=lambda category: -(_SHARES[category] * count % _SHARES_TOTAL))
    for category in by_remainder[: count - sum(counts.values())]:
        counts[category] += 1
    least = 2 if count >= 100 else 1
    for category in Category:
        while counts[category] < least:
            largest = max(Category, key=lambda other: counts[other])
            counts[largest] -= 1
            counts[category] += 1
    return counts


def generate_population(*, year: int, count: int = 1200, seed: int = 2026) -> list[SeededPerson]:
    """`count` synthetic persons as the register stands in `year`: one of each category first.

    The same arguments always give the same list.
    """
    rng = random.Random(f"minid-population-{seed}")
    generator = _Generator(year=year, rng=rng)
    made = [generator.make(category, n) for category, n in category_counts(count).items()]
    rest = [person for persons in made for person in persons[1:]]
    rng.shuffle(rest)
    return [persons[0] for persons in made] + rest


def _add_years(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February into a year that is not a leap year
        return day.replace(year=day.year + years, day=28)


def _spread_over_year(year: int, n: int) -> list[date]:
    """`n` birthdays spread evenly from 1 January to 31 December of `year`."""
    last = 365 if calendar.isleap(year) else 364
    return [date(year, 1, 1) + timedelta(days=i * last // max(n - 1, 1)) for i in range(n)]


def _family_name(entry: str, gender: Gender) -> str:
    male, _, female = entry.partition("/")
    return female if gender is Gender.FEMALE and female else male


class _Generator:
    def __init__(self, *, year: int, rng: random.Random) -> None:
        self._year = year
        self._rng = rng
        self._used = {WALKTHROUGH.identity_number[:9]}  # the first nine digits of every number given out
        self._parents: list[Person] = []  # adults with an address, for children to live with
        self._builders: dict[Category, Callable[[], SeededPerson]] = {
            Category.ADULT: self._adult,
            Category.D_NUMBER_NORWAY: self._d_number_norway,
            Category.D_NUMBER_ABROAD: self._d_number_abroad,
            Category.CHILD: self._child,
            Category.DECEASED: self._deceased,
            Category.NO_ADDRESS: self._no_address,
            Category.EMIGRATED: self._emigrated,
            Category.RULE_2032: self._rule_2032,
        }

    def make(self, category: Category, n: int) -> list[SeededPerson]:
        if category is Category.TURNS_13:
            return [self._turns_13(born) for born in _spread_over_year(self._year - 13, n)]
        build = self._builders[category]
        if category is Category.ADULT:
            return [self._walkthrough(), *(build() for _ in range(n - 1))]
        return [build() for _ in range(n)]

    # --- the categories ---

    def _walkthrough(self) -> SeededPerson:
        self._parents.append(WALKTHROUGH.person)
        return WALKTHROUGH

    def _adult(self) -> SeededPerson:
        gender, born = self._gender(), self._born(turning=(19, 90))
        given, family = self._norwegian_name(gender)
        person = Person(
            given, family, born, IdentityNumberKind.FODSELSNUMMER, PersonStatus.RESIDENT,
            address=self._norwegian_address(care_of=0.03),
        )  # fmt: skip
        self._parents.append(person)
        return SeededPerson(self._number(born, gender), person, Category.ADULT)

    def _d_number_norway(self) -> SeededPerson:
        country = self._country(_D_NUMBER_COUNTRIES)
        gender, born = self._gender(), self._born(turning=(19, 67))
        given, family = self._foreign_name(country, gender)
        abroad = self._foreign_address(country) if self._rng.random() < 0.4 else None
        person = Person(
            given, family, born, IdentityNumberKind.D_NUMBER, PersonStatus.NOT_RESIDENT,
            address=self._norwegian_address(care_of=0.15), address_abroad=abroad,
        )  # fmt: skip
        number = self._number(born, gender, kind=IdentityNumberKind.D_NUMBER)
        return SeededPerson(number, person, Category.D_NUMBER_NORWAY)

    def _d_number_abroad(self) -> SeededPerson:
        country = self._country(_D_NUMBER_COUNTRIES)
        gender, born = self._gender(), self._born(turning=(19, 67))
        given, family = self._foreign_name(country, gender)
        person = Person(
            given, family, born, IdentityNumberKind.D_NUMBER, PersonStatus.NOT_RESIDENT,
            address_abroad=self._foreign_address(country),
        )  # fmt: skip
        number = self._number(born, gender, kind=IdentityNumberKind.D_NUMBER)
        return SeededPerson(number, person, Category.D_NUMBER_ABROAD)

    def _child(self) -> SeededPerson:
        return self._minor(self._born(turning=(1, 12)), Category.CHILD)

    def _turns_13(self, born: date) -> SeededPerson:
        return self._minor(born, Category.TURNS_13)

    def _minor(self, born: date, category: Category) -> SeededPerson:
        """A child living with one of the adults (same family name and address) where one fits."""
        gender = self._gender()
        given, family = self._norwegian_name(gender)
        parents = [p for p in self._parents if 22 <= born.year - p.birth_date.year <= 45]
        address = self._norwegian_address(care_of=0.0)
        if parents:
            parent = self._rng.choice(parents)
            family, address = parent.family_name, parent.address or address
        person = Person(given, family, born, IdentityNumberKind.FODSELSNUMMER, PersonStatus.RESIDENT, address=address)
        return SeededPerson(self._number(born, gender), person, category)

    def _deceased(self) -> SeededPerson:
        gender, born = self._gender(), self._born(turning=(25, 95))
        given, family = self._norwegian_name(gender)
        start = max(_add_years(born, 20), date(self._year - 10, 1, 1))
        died = self._day_between(start, date(self._year, 1, 1) - timedelta(days=1))
        address = self._norwegian_address(care_of=0.0) if self._rng.random() < 0.6 else None
        person = Person(
            given, family, born, IdentityNumberKind.FODSELSNUMMER, PersonStatus.DECEASED,
            address=address, deceased_on=died,
        )  # fmt: skip
        return SeededPerson(self._number(born, gender), person, Category.DECEASED)

    def _no_address(self) -> SeededPerson:
        gender, born = self._gender(), self._born(turning=(19, 70))
        given, family = self._norwegian_name(gender)
        person = Person(given, family, born, IdentityNumberKind.FODSELSNUMMER, PersonStatus.RESIDENT)
        return SeededPerson(self._number(born, gender), person, Category.NO_ADDRESS)

    def _emigrated(self) -> SeededPerson:
        gender, born = self._gender(), self._born(turning=(20, 80))
        given, family = self._norwegian_name(gender)
        person = Person(
            given, family, born, IdentityNumberKind.FODSELSNUMMER, PersonStatus.EMIGRATED,
            address_abroad=self._foreign_address(self._country(_EMIGRATION)),
        )  # fmt: skip
        return SeededPerson(self._number(born, gender), person, Category.EMIGRATED)

    def _rule_2032(self) -> SeededPerson:
        gender, born = self._gender(), self._born(turning=(19, 70))
        given, family = self._norwegian_name(gender)
        person = Person(
            given, family, born, IdentityNumberKind.FODSELSNUMMER, PersonStatus.RESIDENT,
            address=self._norwegian_address(care_of=0.03),
        )  # fmt: skip
        number = self._number(born, gender, remainder=self._rng.choice((1, 2, 3)))
        return SeededPerson(number, person, Category.RULE_2032)

    # --- the parts ---

    def _gender(self) -> Gender:
        return self._rng.choice((Gender.FEMALE, Gender.MALE))

    def _born(self, *, turning: tuple[int, int]) -> date:
        """A birth date of someone turning `turning[0]` to `turning[1]` years old during the year."""
        born_in = self._year - self._rng.randint(*turning)
        return self._day_between(date(born_in, 1, 1), date(born_in, 12, 31))

    def _day_between(self, first: date, last: date) -> date:
        return first + timedelta(days=self._rng.randint(0, (last - first).days))

    def _number(
        self,
        born: date,
        gender: Gender,
        *,
        kind: IdentityNumberKind = IdentityNumberKind.FODSELSNUMMER,
        remainder: int = 0,
    ) -> str:
        """A synthetic number not given out before, whose individual number fits the century and gender."""
        numbers = individual_numbers_for(born.year)
        odd = 1 if gender is Gender.MALE else 0  # the individual number's parity carries the gender
        individuals = range(numbers.start + odd, numbers.stop, 2)
        for _ in range(10 * len(individuals)):
            individual = self._rng.choice(individuals)
            number = compose_identity_number(born, individual, kind=kind, synthetic=True, remainder=remainder)
            if number is not None and number[:9] not in self._used:
                self._used.add(number[:9])
                return number
        raise RuntimeError(f"no synthetic identity number left for {born.isoformat()}")

    def _norwegian_name(self, gender: Gender) -> tuple[str, str]:
        names = _MALE if gender is Gender.MALE else _FEMALE
        given, family = self._rng.choice(names), self._rng.choice(_FAMILY)
        if self._rng.random() < 0.12:  # a second given name: "Per Olav", "Anne Marit"
            given = f"{given} {self._rng.choice([n for n in names if n != given])}"
        if self._rng.random() < 0.1:  # a middle name: "Kari Lie Hansen"
            given = f"{given} {self._rng.choice([n for n in _FAMILY if n != family])}"
        return given, family

    def _foreign_name(self, country: _Country, gender: Gender) -> tuple[str, str]:
        names = country.male if gender is Gender.MALE else country.female
        return self._rng.choice(names), _family_name(self._rng.choice(country.family), gender)

    def _norwegian_address(self, *, care_of: float) -> NorwegianAddress:
        street = f"{self._rng.choice(_STREETS)} {self._rng.randint(1, 120)}"
        if self._rng.random() < 0.12:
            street += self._rng.choice("ABCD")
        if self._rng.random() < 0.25:  # a flat in a block: floor and unit, "H0203"
            street += f" H{self._rng.randint(1, 6):02d}{self._rng.randint(1, 6):02d}"
        postal_code, city = self._rng.choice(_POST_TOWNS)
        recipient = None
        if self._rng.random() < care_of:
            given, family = self._norwegian_name(self._gender())
            recipient = f"{given} {family}"
        return NorwegianAddress(street, postal_code, city, care_of=recipient)

    def _foreign_address(self, country: _Country) -> ForeignAddress:
        street, rest = self._rng.choice(country.places)
        first = country.street_line.format(
            street=street,
            number=self._rng.randint(1, 120),
            flat=self._rng.randint(1, 40),
            floor=self._rng.randint(1, 6),
        )
        return ForeignAddress(lines_abroad=(first, *rest), country=country.name, country_code=country.code)

    def _country(self, weighted: tuple[tuple[_Country, int], ...]) -> _Country:
        return self._rng.choices([c for c, _ in weighted], weights=[w for _, w in weighted])[0]
