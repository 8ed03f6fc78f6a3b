"""Deterministic, realistic-looking memories and questions about them, for the latency bench.

Sentences are built from templates over a few hundred names, places, objects and activities,
so that word frequencies look like an agent's notes: a few words everywhere, most words rare.
The same seed always gives the same sentences in the same order.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass


def _split(text: str, separator: str | None = None) -> list[str]:
    return text.split(separator)


FIRST = _split(
    "Aisha Alex Amara Ana Anders Ben Bianca Carlos Chen Chloe Dara Dmitri Elena Emeka Eva Farah Felix Gabriel "
    "Grace Hana Hiro Ines Ivan Jamal Jana Jonas Julia Kai Kamala Karin Leila Leo Lina Luca Maya Mateo Mei Mira "
    "Nadia Nikhil Noor Olga Omar Pablo Priya Quinn Rafael Rosa Sam Sara Sofia Tariq Tess Theo Uma Victor Wen "
    "Yara Yusuf Zoe Zara Oskar Ingrid Tomas Amelie Kofi Lucia Arjun Freya Mateus Sana Emil Ayla Rohan Nora"
)
LAST = _split(
    "Adams Baker Costa Dubois Eriksen Fischer Garcia Haddad Ito Jensen Kowalski Lindqvist Moreau Nakamura "
    "Okafor Petrov Quinn Rossi Schmidt Tanaka Ueda Varga Weber Xu Yilmaz Zhang Novak Silva Kaur Mensah"
)
RELATIONS = _split("sister brother cousin neighbour colleague manager friend aunt uncle daughter son flatmate")
PLACES = _split(
    "community garden|climbing gym|public library|farmers market|train station|harbour|city museum|"
    "old bakery|rooftop bar|pottery studio|dog park|swimming pool|night school|hardware store|bookshop|"
    "coworking space|hospital|cathedral|football pitch|ice rink|jazz club|vineyard|ferry terminal|"
    "concert hall|bike shop|animal shelter|community centre|botanical garden|flea market|ski resort|"
    "lakeside cabin|recording studio|school gym|tea house|camping site|art gallery|dentist|post office",
    "|",
)
CITIES = _split(
    "Lisbon Porto Oslo Kyoto Nairobi Lagos Lima Quito Hanoi Seoul Krakow Vienna Dublin Accra Montreal "
    "Valencia Tallinn Bergen Melbourne Austin Denver Cusco Tbilisi Marrakesh Reykjavik Sapporo Bologna"
)
ACTIVITIES = _split(
    "rock climbing|sourdough baking|salsa dancing|watercolour painting|trail running|birdwatching|chess|"
    "woodworking|beekeeping|sailing|knitting|photography|pottery|the cello|Spanish|Japanese|judo|yoga|"
    "cycling|gardening|calligraphy|improv theatre|astronomy|fly fishing|rowing|bouldering|the violin|"
    "screen printing|kite surfing|choir singing|coding|embroidery|marathon training|table tennis",
    "|",
)
OBJECTS = _split(
    "bicycle|laptop|guitar|sofa|camera|kayak|sewing machine|telescope|espresso machine|drone|tent|"
    "vintage radio|record player|winter coat|hiking boots|painting|bookshelf|piano|aquarium|bread oven|"
    "microscope|typewriter|mountain bike|rug|desk lamp|skateboard|backpack|tablet|wristwatch|violin",
    "|",
)
ADJECTIVES = _split("old|new|second-hand|tiny|huge|red|borrowed|broken|antique|cheap|expensive|handmade", "|")
PROJECTS = _split(
    "billing migration|website redesign|quarterly report|mobile app|data pipeline|grant proposal|"
    "warehouse audit|onboarding guide|pricing study|support rota|security review|product launch|"
    "conference talk|hiring plan|customer survey|office move|budget forecast|API upgrade",
    "|",
)
WEEKDAYS = _split("Monday Tuesday Wednesday Thursday Friday Saturday Sunday")
MONTHS = _split("January February March April May June July August September October November December")
FOODS = _split(
    "ramen|paella|lemon cake|falafel|dumplings|mushroom risotto|tacos|curry|pancakes|sushi|borscht|"
    "jollof rice|apple pie|pho|lasagne|kimchi stew|empanadas|baklava|goulash|pad thai",
    "|",
)
FEELINGS = _split("thrilled|nervous|exhausted|proud|relieved|frustrated|curious|calm|overwhelmed|hopeful", "|")
REASONS = _split(
    "the client asked for more time|two people were ill|the budget was cut|the servers were down|"
    "a storm closed the roads|the venue was double-booked|the numbers did not add up|"
    "the team wanted another round of testing|the supplier was late|legal had questions",
    "|",
)


@dataclass(frozen=True)
class Memory:
    """A generated memory and a question it answers."""

    text: str
    question: str


def _person(rng: random.Random) -> str:
    return f"{rng.choice(FIRST)} {rng.choice(LAST)}" if rng.random() < 0.3 else rng.choice(FIRST)


def _one(rng: random.Random) -> Memory:
    name, other = _person(rng), rng.choice(FIRST)
    place, city, day = rng.choice(PLACES), rng.choice(CITIES), rng.choice(WEEKDAYS)
    activity, thing, adjective = rng.choice(ACTIVITIES), rng.choice(OBJECTS), rng.choice(ADJECTIVES)
    project, month, food, feeling = rng.choice(PROJECTS), rng.choice(MONTHS), rng.choice(FOODS), rng.choice(FEELINGS)
    relation, reason, hours = rng.choice(RELATIONS), rng.choice(REASONS), rng.randint(2, 9)
    choices = (
        (
            f"{name} started {activity} lessons at the {place} in {month} and goes every {day}.",
            f"What hobby did {name.split()[0]} take up?",
        ),
        (
            f"{name} bought a {adjective} {thing} at the {place} for the flat in {city}.",
            f"Where did {name.split()[0]} get the {thing}?",
        ),
        (
            f"The {project} was pushed to {day} because {reason}.",
            f"Why was the {project} delayed?",
        ),
        (
            f"{name} told me their {relation} {other} is moving to {city} in {month}.",
            f"Which relative of {name.split()[0]} is relocating?",
        ),
        (
            f"We had {food} with {name} at a small place near the {place}; {other} paid.",
            f"Who covered dinner when we ate {food}?",
        ),
        (
            f"{name} felt {feeling} after presenting the {project} to the board on {day}.",
            f"How did {name.split()[0]} feel about the presentation?",
        ),
        (
            f"{name}'s {adjective} {thing} broke on the way to {city}, so {other} lent theirs.",
            f"What happened to {name.split()[0]}'s {thing} on the trip?",
        ),
        (
            f"{name} volunteers at the {place} on {day} mornings and has done so since {month}.",
            f"When does {name.split()[0]} help out at the {place}?",
        ),
        (
            f"{name} spent {hours} hours fixing the {thing} with {other} last {day}.",
            f"Who repaired the {thing} together?",
        ),
        (
            f"{name} is allergic to {food}, so the team picks another place for lunch.",
            f"What can {name.split()[0]} not eat?",
        ),
        (
            f"After a long week, {name} went {activity} near {city} and came back {feeling}.",
            f"What did {name.split()[0]} do to unwind near {city}?",
        ),
        (
            f"{name} asked {other} to review the {project} numbers before {day}.",
            f"Who needs to check the {project} figures?",
        ),
    )
    text, question = rng.choice(choices)
    return Memory(text, question)


def memories(count: int, seed: int = 5) -> Iterator[Memory]:
    """`count` memories, always the same ones for the same seed."""
    rng = random.Random(seed)
    for _ in range(count):
        yield _one(rng)
