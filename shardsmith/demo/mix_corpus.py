"""The embedded sample corpus: a small multi-source corpus that shardsmith writes itself, junk included.

``write_sample_corpus(dest, seed)`` writes five sources in the formats the real corpora use, each with the junk
real crawls carry, in fixed and documented proportions, so that the filters have something to do:

============  ==============  =========================================================================
folder        recipe kind     format
============  ==============  =========================================================================
``web/``      ``fineweb``     FineWeb-like parquet: text, id, url, dump, language_score, score, int_score
``c4/``       ``c4``          C4-like ``*.json.gz`` lines: text, url, timestamp
``wiki/``     ``wikipedia``   Wikipedia-like jsonl: title, text
``news/``     ``news_folder`` one article per ``.txt`` (headline line, blank line, body) in category folders
``zh/``       ``skypile``     SkyPile-like Chinese jsonl: text
============  ==============  =========================================================================

Good documents are prose from a generated grammar: about twenty topics, each with its own people, nouns,
verbs, adjectives and places, filled into some ninety sentence templates (general, web, news, encyclopedic,
C4-style), grouped into paragraphs of 80-600 words. They are meant to pass datatrove's English chain with the
FineWeb settings, and the Chinese ones the FineWeb-2 ``cmn_Hani`` chain (jieba word splitting).
Junk: spam / ad pages, navigation boilerplate and cookie banners, wrong-language pages (French, German, Spanish in
the English sources; English in the Chinese one), heavy repetition, too-short pages, symbol soup (Chinese),
near-duplicates and exact duplicates. Traditional-Chinese pages are *good* documents (OpenCC s2t of good prose):
language ID calls them ``zh`` and the project's ``opencc_t2s`` step turns them back into simplified text.
Duplicates pass the quality filters by design: only deduplication removes them.

Besides the data, ``dest`` gets ``MANIFEST.txt`` (documents per source, good/junk counts per kind, bytes) and
``LABELS.tsv`` (one row per document: source, file, row, category, kind, detail) so tests and demos can tell
what each rejected document was. Both sit outside the source folders, so readers never see them.

Every word comes from the lists below (written for this project: invented towns, people and sites); nothing is
downloaded or copied. Output is a pure function of ``seed``: same seed, same bytes (gzip mtime 0, fixed parquet
settings). Writing it takes about a second on one core.

Run it by hand with ``python -m shardsmith.demo.mix_corpus DEST [--seed N]``.
"""

# The lexicon below is written as dict(...) and "a b c".split() on purpose: it reads like word lists.
# ruff: noqa: C408, SIM905

from __future__ import annotations

import gzip
import io
import json
import os
import random
import re
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["LABELS_NAME", "MANIFEST_NAME", "PLAN", "SOURCES", "read_labels", "write_sample_corpus"]

MANIFEST_NAME = "MANIFEST.txt"
LABELS_NAME = "LABELS.tsv"

# source name -> (recipe kind, language, folder)
SOURCES: dict[str, tuple[str, str, str]] = {
    "web": ("fineweb", "en", "web"),
    "c4": ("c4", "en", "c4"),
    "wiki": ("wikipedia", "en", "wiki"),
    "news": ("news_folder", "en", "news"),
    "zh": ("skypile", "zh", "zh"),
}

GOOD_KINDS = ("prose", "traditional")
# Junk the quality/language filters should drop, and junk only deduplication removes.
FILTER_JUNK = ("spam", "boilerplate", "wrong_language", "repetition", "too_short", "symbol_soup")
DUP_JUNK = ("near_duplicate", "exact_duplicate")

# Documents per source and kind. Shares are documented in MANIFEST.txt; tests check them against the files.
PLAN: dict[str, dict[str, int]] = {
    "web": dict(prose=480, spam=20, boilerplate=20, wrong_language=30, repetition=18, too_short=20,
                near_duplicate=15, exact_duplicate=15),
    "c4": dict(prose=200, spam=10, boilerplate=10, wrong_language=12, repetition=8, too_short=10,
               near_duplicate=8, exact_duplicate=8),
    "wiki": dict(prose=72, spam=2, boilerplate=4, wrong_language=6, repetition=3, too_short=6,
                 near_duplicate=3, exact_duplicate=3),
    "news": dict(prose=66, spam=2, boilerplate=5, wrong_language=3, repetition=3, too_short=5,
                 near_duplicate=3, exact_duplicate=3),
    "zh": dict(prose=120, traditional=16, spam=8, boilerplate=8, wrong_language=8, repetition=6, too_short=8,
               symbol_soup=8, near_duplicate=6, exact_duplicate=6),
}

# Target length of good documents in words (English) or characters (Chinese), per source.
_LENGTHS = {"web": (110, 560), "c4": (80, 420), "wiki": (180, 600), "news": (160, 560), "zh": (260, 900)}
_FILES_PER_SOURCE = {"web": 2, "c4": 2, "wiki": 1, "zh": 1}

# ---------------------------------------------------------------------------------------------------------------
# Lexicon (written for this project)
# ---------------------------------------------------------------------------------------------------------------
# English: shared pieces
# ---------------------------------------------------------------------------------------------------------------
FIRST_NAMES = (
    "Alice Marcus Priya Tomas Helen Daniel Grace Samuel Nadia Oliver Ruth Victor Elena Kwame Hannah Isaac Leila "
    "Peter Mei Joseph Clara Rafael Irene George Amara Lucas Sofia Martin Yusuf Anna Bridget Colin Dalia Edwin "
    "Fatima Gordon Ingrid Jonas Keiko Liam Miriam Nikolai Orla Pavel Rosa Stefan Tara Umar Vera Walter"
).split()

LAST_NAMES = (
    "Marsh Okafor Lindqvist Harper Brennan Castillo Whitfield Nakamura Adeyemi Fischer Moreau Patel Hollis Duarte "
    "Kowalski Reyes Thornton Abbott Sinclair Varga Hughes Mendel Carver Osei Larsen Quinn Barlow Ivanova Stone "
    "Ferreira Achterberg Bellamy Crowther Delacroix Eriksen Fairweather Galloway Hendry Iqbal Jessop Kirkland "
    "Lowther Maddox Novak Ormsby Pritchard Rowntree Sutcliffe Tennant Underhill Voss Winslow Yeoman"
).split()

TOWNS = (
    "Eastbrook|Hollowmere|Port Callan|Westmoor|Ravensford|Linden Vale|Ashcombe|Millbridge|Norhaven|Stonecross|"
    "Fairhaven|Greywater|Kingsmere|Oakridge|Brackenfield|Thornbury|Redhill|Elmstead|Harrowgate|Copperton|"
    "Dunmore|Fenwick|Glenross|Highcliff|Ivybridge|Juniper Falls|Kestrel Bay|Larkhill|Moorfield|Newhaven Cross"
).split("|")

REGIONS = (
    "the northern valley|the coastal plain|the western uplands|the river delta|the eastern provinces|"
    "the lake district|the southern hills|the central lowlands|the island chain|the border counties"
).split("|")

MONTHS = "January February March April May June July August September October November December".split()
DAYS = "Monday Tuesday Wednesday Thursday Friday Saturday Sunday".split()
SEASONS = "spring summer autumn winter".split()
NUMBER_WORDS = "two three four five six seven eight nine ten twelve fifteen twenty".split()

CONNECTIVES = (
    "However,|In addition,|For example,|As a result,|At the same time,|In practice,|Even so,|By contrast,|"
    "For this reason,|In many cases,|Over time,|Not surprisingly,|In recent years,|Despite this,|"
    "On the other hand,|Meanwhile,|Later,|Today,|Historically,|In the end,|Perhaps more importantly,|"
    "Put simply,|To some extent,|Above all,|In the meantime,|Unsurprisingly,|Until recently,|Even then,"
).split("|")

ADVERBS_MANNER = (
    "carefully quickly slowly gradually regularly closely steadily quietly openly patiently thoroughly "
    "efficiently cautiously deliberately consistently properly reliably"
).split()
ADVERBS_FREQ = "often rarely sometimes usually regularly seldom occasionally frequently generally".split()
ADVERBS_DEGREE = "surprisingly remarkably fairly rather particularly especially relatively unusually".split()
MODALS = "can could may might should will would must".split()
SAY_VERBS = "said|explained|noted|argued|pointed out|suggested|reported|added|observed|admitted|warned".split("|")
THINK_VERBS = "believe|argue|suggest|expect|agree|claim|assume|fear|hope|suspect".split("|")
ROLES_GENERAL = (
    "researcher|local historian|retired teacher|volunteer|consultant|project manager|council member|"
    "engineer|journalist|small business owner|librarian|museum curator|policy adviser|doctoral student"
).split("|")
ORGS = (
    "the local council|the regional authority|the university|the town museum|a small charity|the national agency|"
    "the county library|a community group|the planning office|a private foundation|the trade association"
).split("|")
QUANTIFIERS = "many|several|a few|most|some|dozens of|hundreds of|a handful of|countless|a number of".split("|")

GENERAL_ADJS = (
    "new old small large important common useful simple careful recent modern local early traditional "
    "practical different familiar unusual reliable expensive cheap popular careful difficult basic major "
    "regional public private detailed quiet busy narrow wide heavy light"
).split()

GENERAL_VERBS = (
    "examine describe improve compare support record review protect test replace explain share repair design "
    "build collect manage reduce increase change develop plan choose study organise prepare inspect maintain "
    "discuss publish clean measure"
).split()

# Irregular past tense / past participle.
IRREGULAR = {
    "build": ("built", "built"), "find": ("found", "found"), "make": ("made", "made"), "take": ("took", "taken"),
    "keep": ("kept", "kept"), "hold": ("held", "held"), "show": ("showed", "shown"), "write": ("wrote", "written"),
    "grow": ("grew", "grown"), "bring": ("brought", "brought"), "buy": ("bought", "bought"),
    "choose": ("chose", "chosen"), "draw": ("drew", "drawn"), "lead": ("led", "led"), "run": ("ran", "run"),
    "see": ("saw", "seen"), "sell": ("sold", "sold"), "send": ("sent", "sent"), "set": ("set", "set"),
    "spend": ("spent", "spent"), "teach": ("taught", "taught"), "catch": ("caught", "caught"),
    "feed": ("fed", "fed"), "give": ("gave", "given"), "know": ("knew", "known"), "leave": ("left", "left"),
    "lose": ("lost", "lost"), "meet": ("met", "met"), "pay": ("paid", "paid"), "put": ("put", "put"),
    "read": ("read", "read"), "ride": ("rode", "ridden"), "speak": ("spoke", "spoken"), "win": ("won", "won"),
    "cut": ("cut", "cut"), "dig": ("dug", "dug"), "fly": ("flew", "flown"), "freeze": ("froze", "frozen"),
    "break": ("broke", "broken"), "drive": ("drove", "driven"), "eat": ("ate", "eaten"), "get": ("got", "got"),
    "begin": ("began", "begun"), "sing": ("sang", "sung"), "steal": ("stole", "stolen"), "shoot": ("shot", "shot"),
    "wear": ("wore", "worn"), "weave": ("wove", "woven"), "sweep": ("swept", "swept"), "split": ("split", "split"),
    "spin": ("spun", "spun"), "light": ("lit", "lit"), "hang": ("hung", "hung"), "bind": ("bound", "bound"),
    "forecast": ("forecast", "forecast"), "broadcast": ("broadcast", "broadcast"), "rebuild": ("rebuilt", "rebuilt"),
    "lend": ("lent", "lent"), "breed": ("bred", "bred"), "rewrite": ("rewrote", "rewritten"), "sow": ("sowed", "sown"),
    "undertake": ("undertook", "undertaken"), "overtake": ("overtook", "overtaken"),
    "withdraw": ("withdrew", "withdrawn"),
}
# Verbs that double their final consonant (map -> mapped, mapping).
DOUBLING = set("map plan ship stop drop trim chop stir plot tag scan grip pin dip clip skim spot sip log jog "
               "prop scrap strip swap wrap chip dab hop rub plug crop debug refer model refuel travel label".split())

# ---------------------------------------------------------------------------------------------------------------
# English: topics. agents = plural groups of people; nouns use "singular:plural" where the plural is irregular.
# ---------------------------------------------------------------------------------------------------------------

TOPICS: dict[str, dict[str, str]] = {
    "astronomy": dict(
        field="astronomy",
        agents="astronomers|amateur observers|planetary scientists|graduate students|observatory staff|"
               "telescope operators",
        roles="astronomer|telescope engineer|planetary scientist|observatory director",
        nouns="telescope galaxy comet orbit planet star cluster nebula:nebulae eclipse meteor spectrum:spectra "
              "observatory satellite asteroid crater atmosphere moon instrument detector lens:lenses mirror "
              "chart survey",
        adjs="distant faint bright rocky icy massive dim stable remote sensitive",
        verbs="observe measure track photograph detect map catalogue monitor calibrate locate",
        actions="observe the night sky|measure the brightness of distant stars|track the orbit of a comet|"
                "photograph the surface of the moon|map faint galaxies|calibrate the main telescope|"
                "record meteor showers|catalogue nearby star clusters|search for new asteroids",
        places="in the southern hemisphere|at a mountain observatory|on the desert plateau|above the old harbour|"
               "from a dark rural site",
    ),
    "cooking": dict(
        field="home cooking",
        agents="home cooks|professional chefs|bakers|food writers|restaurant owners|market traders",
        roles="chef|baker|food writer|cookery teacher",
        nouns="recipe sauce oven loaf:loaves dough spice ingredient kitchen knife:knives pan flavour broth crust "
              "vegetable menu dish stew bread pastry onion:onions",
        adjs="fresh crisp savoury sweet bitter rich tender golden seasonal thick",
        verbs="prepare season bake taste roast slice stir simmer serve adjust",
        actions="bake fresh bread|prepare a simple broth|season the vegetables|roast root vegetables|"
                "slice the onions thinly|simmer the stew for hours|taste the sauce|serve seasonal dishes|"
                "write down family recipes",
        places="in a small kitchen|at the weekly market|in the village bakery|at a busy restaurant|"
               "in farmhouse kitchens",
    ),
    "gardening": dict(
        field="gardening",
        agents="gardeners|allotment holders|horticulturists|nursery workers|landscape designers|beekeepers",
        roles="horticulturist|garden designer|nursery owner|allotment secretary",
        nouns="seedling soil compost hedge root:roots greenhouse shrub orchard bulb pond border pest meadow "
              "branch blossom trellis fern tomato:tomatoes",
        adjs="hardy leafy shady damp fertile sheltered overgrown flowering native sturdy",
        verbs="plant prune water sow harvest mulch grow transplant weed feed",
        actions="plant young seedlings|prune the fruit trees|water the borders|sow seeds in trays|"
                "harvest ripe tomatoes|mulch the flower beds|turn the compost heap|grow herbs on the windowsill|"
                "protect tender plants from frost",
        places="in the walled garden|on the allotments|along the riverbank|behind the cottage|in raised beds",
    ),
    "railways": dict(
        field="railway history",
        agents="railway engineers|signal operators|passengers|heritage volunteers|track workers|timetable planners",
        roles="railway engineer|station manager|heritage volunteer|transport historian",
        nouns="locomotive carriage timetable junction viaduct platform signal tunnel branch "
              "station freight depot:depots ticket bridge siding engine route",
        adjs="narrow busy rural electric steam-powered disused restored overnight regional main",
        verbs="restore operate inspect extend electrify repair schedule close reopen drive",
        actions="restore an old steam locomotive|repair the signal box|extend the branch line|"
                "electrify the main route|inspect the viaduct|reopen the closed station|rewrite the timetable|"
                "clear the track after storms|run extra trains in summer",
        places="on the coastal line|at the old junction|through the valley|near the main station|"
               "along the disused branch",
    ),
    "marine": dict(
        field="marine biology",
        agents="marine biologists|divers|fishermen|coastal rangers|oceanographers|research crews",
        roles="marine biologist|oceanographer|diving instructor|harbour master",
        nouns="reef:reefs tide current seabed kelp:kelp plankton:plankton whale dolphin shell coral:corals "
              "estuary:estuaries lagoon harbour trawler buoy sample crab",
        adjs="shallow salty murky coastal tropical migratory fragile deep sheltered tidal",
        verbs="survey sample tag monitor photograph protect count restore track study",
        actions="survey the coral reef|tag migrating whales|sample the seawater|count seabirds on the cliffs|"
                "monitor the kelp forests|restore the oyster beds|track plankton blooms|photograph the seabed|"
                "clean the beaches",
        places="off the rocky coast|in the shallow bay|along the estuary|near the outer reef|beneath the pier",
    ),
    "music": dict(
        field="music",
        agents="musicians|composers|choir members|music teachers|sound engineers|festival organisers",
        roles="composer|violinist|music teacher|sound engineer",
        nouns="melody:melodies rhythm chord instrument orchestra rehearsal concert song choir album harmony "
              "violin piano score recording festival",
        adjs="gentle lively complex acoustic classical rhythmic haunting cheerful slow loud",
        verbs="compose rehearse perform record arrange tune conduct play practise release",
        actions="rehearse the new symphony|record an album|tune the old piano|compose a short piece|"
                "perform at the summer festival|teach young violinists|arrange folk songs for the choir|"
                "conduct the local orchestra|repair old instruments",
        places="in the town hall|at the summer festival|in a converted chapel|on the village green|"
               "in a small studio",
    ),
    "software": dict(
        field="software engineering",
        agents="software developers|system administrators|testers|open source contributors|data engineers|"
               "product teams",
        roles="software developer|database administrator|security analyst|release manager",
        nouns="database server:servers library:libraries interface module bug release compiler network "
              "backup query:queries cache log:logs test deployment script",
        adjs="reliable slow efficient secure legacy distributed modular automated fragile lightweight",
        verbs="deploy debug refactor test document configure monitor upgrade review optimise",
        actions="fix the login bug|deploy the new release|back up the database|write automated tests|"
                "review each change|upgrade the servers|monitor the error logs|document the interface|"
                "refactor the old module",
        places="in the data centre|on the staging servers|inside the main repository|across the company network|"
               "on older laptops",
    ),
    "medicine": dict(
        field="public health",
        agents="doctors|nurses|pharmacists|health visitors|medical students|hospital managers",
        roles="general practitioner|nurse|pharmacist|epidemiologist",
        nouns="patient clinic vaccine symptom treatment hospital dose infection diet diagnosis:diagnoses "
              "prescription ward therapy injury:injuries appointment",
        adjs="mild chronic common effective serious preventive routine acute healthy painful",
        verbs="treat diagnose prescribe prevent monitor vaccinate examine advise refer manage",
        actions="treat common infections|vaccinate young children|monitor blood pressure|"
                "prescribe antibiotics carefully|advise patients on diet|reduce waiting times|train new nurses|"
                "record every symptom|prevent the spread of disease",
        places="in rural clinics|at the district hospital|in the outpatient ward|across the county|"
               "in community centres",
    ),
    "economics": dict(
        field="local economics",
        agents="economists|shop owners|investors|trade unions|small firms|policy makers",
        roles="economist|shop owner|financial adviser|trade union official",
        nouns="market price:prices wage budget tax:taxes loan savings:savings export import inflation "
              "industry:industries contract supplier profit:profits rent",
        adjs="stable volatile rising modest seasonal competitive costly profitable cautious informal",
        verbs="invest borrow export negotiate forecast regulate lend save hire cut",
        actions="raise interest rates|cut the local budget|invest in small firms|export more grain|"
                "lend money to farmers|negotiate new contracts|forecast rising prices|hire seasonal workers|"
                "lower the rent",
        places="in the high street|across the region|in the port towns|at the weekly auction|in rural districts",
    ),
    "architecture": dict(
        field="architecture",
        agents="architects|builders|stonemasons|conservation officers|surveyors|planners",
        roles="architect|stonemason|structural engineer|conservation officer",
        nouns="building facade roof:roofs window chimney staircase courtyard beam column arch foundation "
              "brick tower cathedral warehouse",
        adjs="timber-framed brick ornate modest tall crumbling elegant sturdy listed draughty",
        verbs="design restore demolish repair survey convert insulate rebuild renovate inspect",
        actions="restore the old facade|repair the leaking roof|convert the warehouse into flats|"
                "insulate the walls|design a new library|survey the crumbling tower|rebuild the chimney|"
                "replace the rotten beams",
        places="in the old town|along the canal|on the market square|near the cathedral|in the dockside quarter",
    ),
    "climate": dict(
        field="weather and climate",
        agents="meteorologists|climate scientists|farmers|flood wardens|weather observers|glaciologists",
        roles="meteorologist|climate scientist|flood warden|hydrologist",
        nouns="storm rainfall drought temperature glacier forecast flood wind cloud season humidity "
              "frost heatwave snowfall river",
        adjs="heavy mild dry wet unusual severe seasonal sudden cold humid",
        verbs="forecast measure record predict model monitor compare analyse observe report",
        actions="forecast heavy rain|measure daily rainfall|record the first frost|model future droughts|"
                "monitor the melting glacier|warn residents about floods|compare summer temperatures|"
                "study the path of storms",
        places="in the upland valleys|along the coast|on the open moor|across the lowlands|in the river basin",
    ),
    "cycling": dict(
        field="cycling",
        agents="cyclists|mechanics|commuters|race organisers|club members|road planners",
        roles="bicycle mechanic|club coach|race organiser|transport planner",
        nouns="bicycle wheel saddle gear chain helmet route lane race climb tyre frame brake pedal",
        adjs="steep lightweight muddy fast scenic narrow flat rusty adjustable long",
        verbs="ride repair adjust train race climb pump clean maintain overtake",
        actions="ride the coastal route|repair a flat tyre|climb the steep hill|adjust the gears|"
                "train for the spring race|clean the chain|plan a new cycle lane|lead a group ride",
        places="on the hill roads|through the forest tracks|along the canal towpath|in the city centre|"
               "on the coastal route",
    ),
    "education": dict(
        field="education",
        agents="teachers|pupils|parents|head teachers|school inspectors|tutors",
        roles="teacher|head teacher|school inspector|education researcher",
        nouns="lesson classroom curriculum:curricula exam homework library:libraries textbook timetable "
              "playground lecture essay skill project",
        adjs="primary secondary practical demanding creative formal optional weekly useful challenging",
        verbs="teach assess mark explain revise encourage plan supervise discuss read",
        actions="teach basic reading|mark the weekly essays|plan the next term|run evening classes|"
                "encourage quiet pupils|revise for the exams|visit the local museum|organise the school library",
        places="in village schools|at the local college|in crowded classrooms|across the district|"
               "in evening classes",
    ),
    "agriculture": dict(
        field="farming",
        agents="farmers|shepherds|dairy workers|agronomists|harvest crews|cooperative members",
        roles="farmer|agronomist|shepherd|dairy manager",
        nouns="field crop harvest tractor barn sheep:sheep cattle:cattle orchard fence irrigation seed wheat "
              "pasture grain herd",
        adjs="dry fertile organic muddy seasonal arable upland grazing abundant early",
        verbs="plough harvest irrigate graze sow fence store sell breed rotate",
        actions="plough the upper fields|harvest the wheat|graze sheep on the hills|irrigate the dry fields|"
                "rotate the crops|repair the old fences|store grain for winter|sell produce at the market|"
                "breed hardy cattle",
        places="on the hill farms|in the river meadows|across the plains|near the grain stores|"
               "on family smallholdings",
    ),
    "photography": dict(
        field="photography",
        agents="photographers|picture editors|camera collectors|photojournalists|students|printers",
        roles="photographer|picture editor|camera repairer|gallery owner",
        nouns="camera lens:lenses exposure print negative portrait landscape shutter tripod darkroom light "
              "shadow frame album",
        adjs="sharp blurred grainy vivid monochrome candid overexposed wide soft dramatic",
        verbs="photograph develop frame edit print capture crop expose focus scan",
        actions="photograph the harbour at dawn|develop the film|print large portraits|frame the landscape|"
                "edit the images|scan old negatives|capture the evening light|set up the tripod",
        places="in the old darkroom|on the harbour wall|at dawn on the moors|in a rented studio|"
               "along the promenade",
    ),
    "geology": dict(
        field="geology",
        agents="geologists|quarry workers|fossil hunters|surveyors|mining engineers|students",
        roles="geologist|quarry manager|palaeontologist|mining engineer",
        nouns="rock fossil layer mineral quarry cliff cave sediment volcano:volcanoes fault earthquake "
              "crystal valley boulder",
        adjs="ancient volcanic sedimentary brittle layered eroded porous rare coarse exposed",
        verbs="excavate measure date map sample classify study survey analyse drill",
        actions="map the limestone layers|date the volcanic rock|collect fossils from the cliffs|"
                "sample the river sediment|study the old fault line|measure small earthquakes|explore the caves|"
                "drill test holes",
        places="in the limestone hills|along the eroded cliffs|inside the old quarry|beneath the moor|"
               "near the fault line",
    ),
    "literature": dict(
        field="literature",
        agents="novelists|poets|readers|critics|publishers|translators",
        roles="novelist|literary critic|translator|publisher",
        nouns="novel poem chapter character manuscript library:libraries story:stories translation author "
              "reader plot letter diary:diaries essay",
        adjs="lengthy moving obscure popular unfinished witty bleak tender ambitious forgotten",
        verbs="write translate publish edit review read revise quote adapt discuss",
        actions="write a first novel|translate old poems|publish a collection of essays|review new books|"
                "edit the manuscript|read aloud to children|adapt the story for the stage|"
                "revise the final chapter",
        places="in the county archive|at the literary festival|in a cramped attic|in the reading room|"
               "at the village bookshop",
    ),
    "aviation": dict(
        field="aviation",
        agents="pilots|air traffic controllers|aircraft engineers|airport staff|flight instructors|passengers",
        roles="pilot|flight instructor|aircraft engineer|airport manager",
        nouns="aircraft:aircraft runway engine wing flight hangar cockpit airport glider propeller route "
              "licence tower",
        adjs="light commercial vintage twin-engine busy regional gusty short cramped modern",
        verbs="fly inspect land maintain refuel schedule repair navigate train certify",
        actions="fly light aircraft|inspect the engines|land on the grass strip|refuel the plane|"
                "train new pilots|repair the hangar roof|schedule extra flights|navigate through the clouds",
        places="at the regional airfield|over the estuary|in the maintenance hangar|above the clouds|"
               "on the grass strip",
    ),
    "energy": dict(
        field="energy",
        agents="energy engineers|homeowners|grid operators|installers|utility companies|researchers",
        roles="energy engineer|grid operator|solar installer|energy analyst",
        nouns="turbine panel battery:batteries grid boiler station meter pipeline pump "
              "insulation cable reservoir dam generator",
        adjs="renewable efficient costly reliable domestic offshore small-scale noisy clean ageing",
        verbs="install generate store connect insulate measure upgrade supply reduce test",
        actions="install solar panels|insulate older homes|connect the turbines to the grid|"
                "store energy in batteries|upgrade the boilers|measure energy use|supply power to the villages|"
                "reduce heating bills",
        places="on the exposed ridge|along the shoreline|in suburban homes|at the old power station|"
               "on farm buildings",
    ),
    "history": dict(
        field="local history",
        agents="historians|archivists|archaeologists|local residents|family researchers|museum volunteers",
        roles="historian|archivist|archaeologist|museum volunteer",
        nouns="archive letter map:maps record parish castle mill market charter photograph census:censuses "
              "monument guild ruin",
        adjs="medieval forgotten surviving detailed damaged early handwritten Victorian rare ancient",
        verbs="catalogue excavate transcribe study preserve date restore digitise examine publish",
        actions="transcribe old letters|study the parish records|excavate the castle ruins|"
                "preserve the town charter|digitise the old maps|restore the market cross|catalogue the archive|"
                "publish a local history",
        places="in the parish archive|beneath the market square|near the ruined abbey|in the county record office|"
               "along the old drove road",
    ),
}

# Templates used by every English style. Slots: NPs/NPp/NP noun phrases (singular/plural/either), SUBJs/SUBJp
# subjects, AG agents, V/V3/VD/VN/VG verb forms (base, 3rd person, past, participle, -ing), ADJ, ADV (manner),
# FREQ, DEG, MODAL, TIME, PLACE, CONN, PERSON, ROLE, TOWN, REGION, NUM, NUMW, PCT, YEAR, FIELD, SAY, THINK, ORG, QUANT.
# A "{V*} {NP*}" pair usually becomes one of the topic's actions ("restore the old facade"), inflected to match.
# A trailing "c" (NOUNc, AGc ...) capitalises: first letter in sentences, title case in headlines.
EN_TEMPLATES_GENERAL = [
    "{CONN} {SUBJp} {V} {NP} {PLACE}.",
    "{SUBJs} {V3} {NP} {TIME}.",
    "{TIMEc}, {SUBJp} {VD} {NP} {PLACE}.",
    "Many {NOUNp} {MODAL} {V} {NP} if {SUBJs} {V3} {NPs} first.",
    "It is {DEG} {ADJ} to {V} {NP} without {VG} {NP} beforehand.",
    "{PERSON}, a {ROLE} from {TOWN}, {SAY} that {SUBJp} {MODAL} {V} {NP} {ADV}.",
    "One reason is that {SUBJp} {V} {NP} more {ADV} than they did {TIME}.",
    "The {NOUN} of {NP} {VD} {ADV} {TIME}.",
    "{SUBJp} {FREQ} {V} {NP}, but they do not always {V} {NP}.",
    "When {SUBJs} {V3} {NP}, {SUBJp} {MODAL} {V} {NP} {ADV}.",
    "There are {QUANT} {NOUNp} {PLACE}, and {NUMW} of them were {VN} {TIME}.",
    "{NPsc} was {VN} {TIME} by {AG}.",
    "This means that {SUBJp} {MODAL} {V} {NP} {ADV}.",
    "Questions about {NP} remain open, and {AG} still disagree about {NP}.",
    "In {TOWN}, {SUBJp} {VD} {NP} and then {VD} {NP}.",
    "{ADJc} {NOUNp} {MODAL} {V} {NP} for {NUM} {UNIT}.",
    "Most {AG} {THINK} that {SUBJs} {MODAL} {V} {NP}.",
    "The results showed that {SUBJp} {VD} {NP} by about {PCT} percent.",
    "{SUBJs} {V3} {NP}, which {V3} {NP} {PLACE}.",
    "Unlike {NP}, {SUBJs} {V3} {NP} {ADV}.",
    "Although {SUBJp} {VD} {NP}, {SUBJs} {VD} {NP} {TIME}.",
    "Each {NOUN} {V3} {NP}, so {SUBJp} {FREQ} {V} {NP}.",
    "Few people realise how much {NP} {V3} {NP}.",
    "The {ADJ} {NOUN} in {TOWN} {V3} {NP} every {SEASON}.",
    "{CONN} {ORG} {VD} {NP} {PLACE} {TIME}.",
    "Nobody expected {SUBJs} to {V} {NP} so {ADV}.",
    "{AGc} who {V} {NP} {FREQ} {V} {NP} as well.",
    "A study of {NUM} {NOUNp} {PLACE} found that {SUBJp} {VD} {NP}.",
    "The cost of {VG} {NP} has risen by {PCT} percent since {YEAR}.",
    "Both {NP} and {NP} {MODAL} be {VN} {ADV}.",
    "{SUBJs} did not {V} {NP} until {YEAR}, when {AG} {VD} {NP}.",
    "Instead of {VG} {NP}, {SUBJp} {VD} {NP} {PLACE}.",
    "With {ADJ} {NOUNp}, {SUBJp} {MODAL} {V} {NP} much more {ADV}.",
    "By {YEAR}, {QUANT} {AG} had {VN} {NP} {PLACE}.",
    "{AGc} in {REGION} {V} {NP} differently from those in {TOWN}.",
    "What matters most is whether {SUBJp} {V} {NP} {ADV}.",
    "It took {NUMW} {UNIT} to {V} {NP}, and the work was finished {TIME}.",
    "The first {NOUN} {PLACE} was {VN} in {YEAR}.",
    "Because {SUBJs} {VD} {NP}, {SUBJp} had to {V} {NP} {TIME}.",
    "{PERSON} has {VN} {NP} {PLACE} for {NUM} years.",
    "Some {AG} prefer to {V} {NP}, while others {V} {NP}.",
    "Not every {NOUN} is {ADJ}, and {SUBJp} {MODAL} {V} {NP} with care.",
    "The number of {NOUNp} {PLACE} fell from {NUM} to {NUM2} {TIME}.",  # NUM2 < NUM
    "{SUBJp} have {FREQ} {VN} {NP} in the hope of {VG} {NP}.",
    "As {AG} {V} {NP}, they also learn to {V} {NP}.",
    "There is little evidence that {SUBJs} {V3} {NP} {ADV}.",
    "Once {SUBJs} has been {VN}, {AG} {MODAL} {V} {NP}.",
    "{TIMEc}, the {NOUN} {PLACE} was {VN} and {VN} again.",
    "{ORGc} hopes to {V} {NP} before the end of {YEAR2}.",
    "Such {NOUNp} are {FREQ} {VN} {PLACE}, where {AG} {V} {NP}.",
]

EN_TEMPLATES_WEB = [
    "If you {V} {NP}, you {MODAL} need to {V} {NP} {ADV}.",
    "You should {V} {NP} before you {V} {NP}.",
    "We {VD} {NP} {TIME} and found that {SUBJs} {VD} {NP}.",
    "I have {FREQ} {VN} {NP}, and I still {V} {NP} {ADV}.",
    "In this post we look at how {AG} {V} {NP} {PLACE}.",
    "My advice is to {V} {NP} {ADV} and to {V} {NP} {FREQ}.",
    "Readers {FREQ} ask us whether it is worth {VG} {NP}.",
    "Last {SEASON} we {VD} {NP} {PLACE}, and the results were {ADJ}.",
    "Do not {V} {NP} until you have {VN} {NP}.",
    "I {VD} {NP} {TIME}, and my neighbours {VD} {NP} soon after.",
    "It is worth remembering that {SUBJs} {V3} {NP} {ADV}.",
    "Our guide explains how to {V} {NP} without {VG} {NP}.",
]

EN_TEMPLATES_NEWS = [
    "{PERSON}, a {ROLE} from {TOWN}, told reporters that {SUBJp} would {V} {NP} {TIME}.",
    "\"We {V} {NP} every {SEASON}, and we will {V} {NP} again,\" {PERSON} {SAY}.",
    "Officials {SAY} on {DAY} that {SUBJs} had {VN} {NP} {PLACE}.",
    "The decision to {V} {NP} was announced on {DAY} by {ORG}.",
    "Figures published on {DAY} showed that {SUBJp} {VD} {NP} by {PCT} percent.",
    "\"It is {DEG} {ADJ},\" {SAY} {PERSON}, who has {VN} {NP} since {YEAR}.",
    "Critics {SAY} that {ORG} {VD} {NP} too {ADV}.",
    "The plan, which {V3} {NP}, is expected to cost about {NUM} million pounds.",
    "According to {ORG}, {QUANT} {AG} {VD} {NP} {TIME}.",
    "{AGc} in {TOWN} {SAY} they were {DEG} pleased with the outcome.",
    "A spokesperson for {ORG} {SAY} the work would {V} {NP} {PLACE}.",
    "Opposition members {SAY} the proposal would {V} {NP} and {V} {NP}.",
]

EN_TEMPLATES_WIKI = [
    "{TITLE} is a {ADJ} {NOUN} {PLACE}.",
    "{TITLE} was first {VN} in {YEAR} by {PERSON}, a {ROLE} from {TOWN}.",
    "The name {TITLE} is thought to come from an old word for {NP}.",
    "During the {ORD} century, {AG} {VD} {NP} {PLACE}.",
    "{TITLE} has been {VN} several times since {YEAR}.",
    "In {YEAR}, {ORG} {VD} {NP} and {VD} {NP}.",
    "The population of {TOWN} was about {BIG} at the census of {YEAR}.",
    "{TITLE} is {FREQ} {VN} with {NP}, although the two are quite different.",
    "Several {NOUNp} {PLACE} are named after {TITLE}.",
    "It was listed as a protected site in {YEAR}.",
    "The area covers about {NUM} square kilometres and lies north of {TOWN}.",
    "Most early accounts of {TITLE} describe {NP} {PLACE}.",
]

EN_TEMPLATES_C4 = [
    "Our team {V3} {NP} {PLACE} and {V3} {NP} {ADV}.",
    "We {V} {NP} for {AG} across {REGION}.",
    "Customers {FREQ} tell us that our {NOUNp} are {ADJ} and {ADJ2}.",
    "The {NOUN} is {ADJ} and comes with {NP}.",
    "Whether you {V} {NP} or {V} {NP}, we are happy to help.",
    "This {NOUN} was {VN} in {YEAR} and has been {VN} {ADV} since then.",
    "Please contact the office if you would like to {V} {NP}.",
    "The event takes place every {SEASON} in {TOWN}, and entry is free for children.",
    "Our {NOUNp} are {VN} by hand {PLACE}.",
    "Visitors can {V} {NP} and {V} {NP} during opening hours.",
]

EN_TITLE_TEMPLATES = [
    "{ADJc} {NOUNpc} and the {NOUNc} of {TOWN}",
    "How {AGc} {Vc} {ADJc} {NOUNpc}",
    "Why {ADJc} {NOUNpc} Matter in {REGIONc}",
    "A Short Guide to {VGc} {NOUNpc}",
    "What We Learned from {VGc} {NOUNpc}",
    "{TOWN} {AGc} {Vc} the {ADJc} {NOUNc}",
    "Notes on {FIELDc} in {TOWN}",
    "The {ADJc} {NOUNc}: {NUM} Years of {FIELDc}",
    "{NOUNpc}, {NOUNp2c} and {FIELDc}",
    "{VGc} {NOUNpc} in {TOWN}",
]

WIKI_TITLE_TEMPLATES = [
    "{TOWN} {NOUNc}",
    "{NOUNc} of {TOWN}",
    "{LAST} {NOUNc}",
    "{ADJc} {NOUNc} ({TOWN})",
    "{TOWN}",
]

WIKI_SECTIONS = ["History", "Description", "Geography", "Later years", "Legacy", "Recent developments",
                 "Early history", "Architecture", "Economy", "Reception"]

NEWS_CATEGORIES = ["business", "science", "sport", "technology", "culture"]
NEWS_CATEGORY_TOPICS = {
    "business": ["economics", "energy", "agriculture", "cooking"],
    "science": ["astronomy", "marine", "geology", "climate", "medicine"],
    "sport": ["cycling", "education", "aviation"],
    "technology": ["software", "energy", "aviation", "photography"],
    "culture": ["music", "literature", "architecture", "history", "photography", "gardening", "railways"],
}

# ---------------------------------------------------------------------------------------------------------------
# English junk
# ---------------------------------------------------------------------------------------------------------------

SPAM_PRODUCTS = (
    "replica watches|cheap flights|casino bonus|weight loss pills|payday loans|designer handbags|crypto signals|"
    "car insurance quotes|cheap phone cases|discount perfume|followers and likes|essay writing service"
).split("|")
SPAM_LINES = [
    "BUY {P} ONLINE - BEST PRICE GUARANTEED",
    "Cheap {p} free shipping worldwide",
    "Click here to get {N}% off {p} today!!!",
    "Top 10 {p} deals of the year",
    "{P} {P} {P} best {p} online",
    "Limited offer: order {p} now and save big",
    "100% genuine {p} - no prescription, no questions",
    "Call now 0800 {N}{N} {N}{N} for {p}",
    "best {p} cheap {p} discount {p} sale",
    "FREE {P} >>> CLICK HERE <<<",
    "Hot deals on {p} | {p} outlet | {p} store",
    "Win a free {p} - enter your email below",
]
SPAM_DOMAINS = ("best-cheap-deals-online.biz|discount-outlet-24.net|top10-offers.info|win-free-prizes.club|"
                "mega-sale-store.xyz|quick-cash-now.biz|hot-deals-today.top|cheap-stuff-direct.info").split("|")

NAV_ITEMS = ("Home|About Us|Services|Blog|Contact|Log in|Sign up|Search|Menu|Shop|Careers|FAQ|News|Events|"
             "Gallery|Support|My Account|Cart (0)|Newsletter|Sitemap|Help Centre|Downloads").split("|")
BOILERPLATE_LINES = [
    "Skip to main content",
    "This website uses cookies to ensure you get the best experience on our website. Learn more",
    "We use cookies to personalise content and ads. By continuing you accept our use of cookies.",
    "Accept cookies",
    "Cookie settings",
    "Privacy Policy | Terms of Use | Cookie Policy",
    "© {YEAR} {COMPANY} | All rights reserved",
    "Share this: Facebook Twitter Email Print",
    "Subscribe to our newsletter",
    "Follow us on social media",
    "Back to top",
    "Posted in Uncategorized | Leave a comment",
    "Related posts",
    "Previous post Next post",
    "Enter your email address",
    "Powered by WordPress",
    "Please enable JavaScript to view this page.",
    "Loading...",
    "Tags: {TOPIC}, news, updates",
    "Call us: 01632 {N}{N}{N}",
]

# ---------------------------------------------------------------------------------------------------------------
# Wrong-language prose (French, German, Spanish): small grammars, enough for a language identifier.
# ---------------------------------------------------------------------------------------------------------------

FOREIGN: dict[str, dict] = {
    "fr": dict(
        agents="les chercheurs|les agriculteurs|les habitants|les enseignants|les ingénieurs|les élus locaux|"
               "les bénévoles|les commerçants",
        verbs="étudient|améliorent|protègent|construisent|observent|financent|réparent|présentent|défendent",
        infs="rénover|protéger|financer|développer|moderniser|entretenir|agrandir|sauvegarder",
        objs="le réseau de transport|la qualité de l'eau|les anciens bâtiments|la forêt communale|"
             "le marché couvert|la bibliothèque municipale|les chemins de randonnée|le port de pêche|"
             "les écoles du quartier|la vieille église",
        places="dans la vallée|au bord du lac|dans le centre-ville|près de la frontière|dans les villages voisins",
        times="depuis plusieurs années|l'été dernier|chaque printemps|au début du siècle|depuis la guerre",
        conns="Cependant,|En outre,|Par ailleurs,|Aujourd'hui,|Selon la mairie,|Pour cette raison,|Ainsi,",
        templates=[
            "{CONN} {AG} {V} {OBJ} {PLACE}.",
            "La commune a décidé de {INF} {OBJ} avant la fin de l'année.",
            "Les habitants espèrent que ce projet permettra de {INF} {OBJ}.",
            "Selon le maire, il est nécessaire de {INF} {OBJ} {TIME}.",
            "Il faut rappeler que {AG} {V} {OBJ} {TIME}.",
            "Ce travail est important pour toute la région, et {AG} le savent bien.",
            "{CONN} le conseil régional veut {INF} {OBJ} et {INF} {OBJ}.",
            "Beaucoup de familles viennent {PLACE} pour voir {OBJ}.",
            "Les travaux ont commencé {TIME} et devraient durer encore deux ans.",
            "Personne ne sait encore combien coûtera ce projet.",
            "{AGc} {V} aussi {OBJ} avec l'aide de l'État.",
            "Nous avons parlé avec plusieurs personnes qui habitent {PLACE}.",
            "Le projet a reçu le soutien de nombreuses associations.",
            "D'après une étude récente, {AG} {V} {OBJ} plus souvent qu'avant.",
        ],
    ),
    "de": dict(
        agents="die Forscher|die Landwirte|die Einwohner|die Lehrer|die Ingenieure|die Gemeinderäte|"
               "die Freiwilligen|die Händler",
        verbs="untersuchen|verbessern|schützen|bauen|beobachten|finanzieren|reparieren|planen|unterstützen",
        infs="renovieren|schützen|finanzieren|entwickeln|modernisieren|erhalten|erweitern|sanieren",
        objs="das Verkehrsnetz|die Wasserqualität|die alten Gebäude|den Stadtwald|die Markthalle|"
             "die Stadtbibliothek|die Wanderwege|den Fischereihafen|die Schulen im Viertel|die alte Kirche",
        places="im Tal|am Ufer des Sees|in der Innenstadt|nahe der Grenze|in den Nachbardörfern",
        times="seit einigen Jahren|im letzten Sommer|jedes Frühjahr|zu Beginn des Jahrhunderts|seit dem Krieg",
        conns="Allerdings|Außerdem|Heute|Laut der Stadtverwaltung|Aus diesem Grund|Deshalb|Trotzdem",
        templates=[
            "{CONN} {V} {AG} {OBJ} {PLACE}.",
            "Die Gemeinde hat beschlossen, {OBJ} vor Ende des Jahres zu {INF}.",
            "Die Bewohner hoffen, dass dieses Projekt hilft, {OBJ} zu {INF}.",
            "Nach Ansicht des Bürgermeisters ist es notwendig, {OBJ} {TIME} zu {INF}.",
            "Man muss daran erinnern, dass {AG} {OBJ} {TIME} {V}.",
            "Diese Arbeit ist für die ganze Region wichtig, und das wissen alle.",
            "Der Landkreis möchte {OBJ} {INF} und gleichzeitig {OBJ} {INF}.",
            "Viele Familien kommen {PLACE}, um {OBJ} zu sehen.",
            "Die Arbeiten haben {TIME} begonnen und dauern noch zwei Jahre.",
            "Niemand weiß bisher, wie viel das Projekt kosten wird.",
            "{AGc} {V} auch {OBJ} mit Hilfe des Landes.",
            "Wir haben mit mehreren Menschen gesprochen, die {PLACE} wohnen.",
            "Das Vorhaben wird von vielen Vereinen unterstützt.",
            "Einer neuen Studie zufolge {V} {AG} {OBJ} häufiger als früher.",
        ],
    ),
    "es": dict(
        agents="los investigadores|los agricultores|los vecinos|los profesores|los ingenieros|los concejales|"
               "los voluntarios|los comerciantes",
        verbs="estudian|mejoran|protegen|construyen|observan|financian|reparan|presentan|defienden",
        infs="renovar|proteger|financiar|desarrollar|modernizar|mantener|ampliar|conservar",
        objs="la red de transporte|la calidad del agua|los edificios antiguos|el bosque municipal|"
             "el mercado cubierto|la biblioteca municipal|los caminos rurales|el puerto pesquero|"
             "las escuelas del barrio|la iglesia vieja",
        places="en el valle|a orillas del lago|en el centro de la ciudad|cerca de la frontera|"
               "en los pueblos vecinos",
        times="desde hace varios años|el verano pasado|cada primavera|a principios de siglo|desde la guerra",
        conns="Sin embargo,|Además,|Hoy en día,|Según el ayuntamiento,|Por esta razón,|Así,|Por otra parte,",
        templates=[
            "{CONN} {AG} {V} {OBJ} {PLACE}.",
            "El ayuntamiento ha decidido {INF} {OBJ} antes de que termine el año.",
            "Los vecinos esperan que este proyecto permita {INF} {OBJ}.",
            "Según el alcalde, es necesario {INF} {OBJ} {TIME}.",
            "Hay que recordar que {AG} {V} {OBJ} {TIME}.",
            "Este trabajo es importante para toda la región, y todos lo saben.",
            "{CONN} la diputación quiere {INF} {OBJ} y también {INF} {OBJ}.",
            "Muchas familias vienen {PLACE} para ver {OBJ}.",
            "Las obras comenzaron {TIME} y durarán todavía dos años.",
            "Nadie sabe todavía cuánto costará el proyecto.",
            "{AGc} también {V} {OBJ} con la ayuda del Estado.",
            "Hablamos con varias personas que viven {PLACE}.",
            "El proyecto cuenta con el apoyo de muchas asociaciones.",
            "Según un estudio reciente, {AG} {V} {OBJ} con más frecuencia que antes.",
        ],
    ),
}

# ---------------------------------------------------------------------------------------------------------------
# Chinese (simplified): topics and templates
# ---------------------------------------------------------------------------------------------------------------

ZH_SURNAMES = "王 李 张 刘 陈 杨 黄 赵 吴 周 徐 孙 马 朱 胡 郭 何 高 林 罗 郑 梁 谢 宋 唐 许 韩 冯 邓 曹".split()
ZH_GIVEN = ("伟 芳 敏 静 丽 强 磊 军 洋 勇 艳 杰 娟 涛 明 超 秀英 华 慧 建国 志强 海燕 晓东 文博 雪梅 "
            "立新 国平 春生 玉兰 振宇 子涵 思远").split()
ZH_CITIES = ("青川 临河 南屏 东湖 西岭 北塘 安平 长宁 清溪 白石 云台 金沙 望江 柳林 桃源 石门 龙泉 凤山 "
             "松阳 梅岭").split()
ZH_PROVINCES = "浙江 四川 湖南 江西 山东 河南 福建 云南 河北 甘肃 吉林 安徽 湖北 陕西".split()
ZH_TIMES = ("今年以来|去年下半年|近年来|过去五年|今年春天|去年冬天|上个月|本世纪初|最近几年|今年上半年|"
            "去年秋收以后|每年夏天").split("|")
ZH_ADVB = "积极 认真 逐步 不断 持续 进一步 大力 有序 稳步 主动 扎实 努力".split()
ZH_CONN = "同时|此外|另外|不过|与此同时|总的来看|事实上|从长远来看|在这种情况下|值得一提的是".split("|")
ZH_ORGS = ("当地政府|有关部门|县里的研究所|市行业协会|乡镇服务中心|省里的专家组|社区居委会|合作社|"
           "区教育局|市统计局").split("|")
ZH_EXPERT = "专家|业内人士|不少学者|研究人员|一位老工程师|基层干部|许多受访者".split("|")

ZH_TOPICS: dict[str, dict[str, str]] = {
    "农业": dict(
        agents="农民|种粮大户|农技人员|合作社成员|返乡青年|果农",
        nouns="灌溉设施|高标准农田|粮食产量|农产品|有机肥料|秋粮|种子|果园|温室大棚|农业机械|土壤|病虫害",
        verbs="推广|改良|建设|管理|防治|收获|种植|改造|储存|销售",
        adjs="稳定|优质|丰富|可靠|先进|合理",
        metric="亩产|收入|产量|种植面积",
        actions="推广节水灌溉|改良盐碱土壤|建设高标准农田|防治病虫害|收获秋粮|种植优质果树|储存新粮|销售农产品|修缮灌溉水渠|使用有机肥料",
    ),
    "教育": dict(
        agents="教师|学生|家长|校长|志愿者|教研员",
        nouns="课程|课堂教学|课外阅读|实验室|作业负担|教材|图书馆|职业教育|校园环境|兴趣小组|考试制度|教学方法",
        verbs="改进|开设|组织|辅导|评估|完善|布置|讨论|建设|推广",
        adjs="丰富|扎实|灵活|多样|生动|合理",
        metric="升学率|阅读量|参与人数|满意度",
        actions="开设课外阅读课|改进教学方法|减轻作业负担|组织兴趣小组|建设实验室|辅导留守儿童|更新图书馆藏书|培训青年教师|完善考试制度",
    ),
    "交通": dict(
        agents="司机|乘客|交通警察|工程师|施工人员|公交公司",
        nouns="公交线路|高速公路|地铁站|停车场|道路网络|交通信号|客运站|铁路|桥梁|充电桩|自行车道|物流中心",
        verbs="修建|规划|改造|开通|维护|调整|检查|优化|扩建|运营",
        adjs="便捷|安全|通畅|高效|完善|宽敞",
        metric="客流量|通行时间|运输量|线路长度",
        actions="开通新的公交线路|修建跨河大桥|改造老旧道路|优化交通信号|扩建客运站|增设充电桩|规划自行车道|维护高速公路",
    ),
    "医疗": dict(
        agents="医生|护士|患者|药剂师|卫生院|社区医生",
        nouns="门诊|疫苗接种|慢性病|医疗保险|药品价格|体检|病房|急救中心|健康档案|家庭医生服务|预防措施|康复治疗",
        verbs="治疗|预防|检查|管理|接种|诊断|完善|推广|落实|改善",
        adjs="及时|有效|便利|规范|专业|全面",
        metric="就诊人数|接种率|住院天数|报销比例",
        actions="推广家庭医生服务|建立居民健康档案|开展疫苗接种|管理慢性病患者|降低药品价格|改善病房条件|培训乡村医生|提高报销比例",
    ),
    "环境": dict(
        agents="环保志愿者|居民|林业工人|环保部门|企业|渔民",
        nouns="空气质量|河流|湿地|垃圾分类|植树造林|污水处理|自然保护区|森林|野生动物|噪声污染|水源地|荒山",
        verbs="治理|保护|监测|恢复|清理|改善|减少|巡查|种植|整治",
        adjs="清洁|良好|明显|持久|严格|自然",
        metric="绿化面积|优良天数|森林覆盖率|处理能力",
        actions="治理城区河流|恢复湿地生态|推行垃圾分类|监测空气质量|植树造林|建设污水处理厂|保护野生动物|清理河道垃圾",
    ),
    "科技": dict(
        agents="科研人员|工程师|大学生|创业团队|技术工人|实验室",
        nouns="新材料|人工智能|芯片|数据中心|电池技术|机器人|软件平台|传感器|研发投入|专利|卫星|新能源汽车",
        verbs="研发|测试|应用|突破|升级|推广|开发|改进|制造|验证",
        adjs="先进|稳定|高效|精确|可靠|创新",
        metric="研发投入|专利数量|产值|效率",
        actions="研发新型电池|测试工业机器人|建设数据中心|申请发明专利|升级软件平台|改进传感器|培养技术人才|推广人工智能应用",
    ),
    "文化": dict(
        agents="游客|导游|非遗传承人|文物工作者|艺术家|村民",
        nouns="古镇|博物馆|传统手艺|民俗活动|文物|旅游线路|戏曲|图书馆|文化节|老街|剪纸|民歌",
        verbs="保护|修缮|展示|传承|举办|开发|整理|宣传|参观|记录",
        adjs="独特|悠久|浓厚|珍贵|精美|丰富",
        metric="游客数量|门票收入|展览场次|参观人次",
        actions="修缮古镇老街|举办民俗文化节|整理民间歌谣|展示传统手艺|保护珍贵文物|开发旅游线路|记录地方戏曲|建设乡村图书馆",
    ),
    "经济": dict(
        agents="企业|商户|投资者|工人|经济学家|小微企业",
        nouns="消费市场|出口贸易|就业岗位|中小企业|物价|工业产值|营商环境|网络销售|产业园区|税收|贷款|供应链",
        verbs="扩大|稳定|促进|支持|调整|带动|增加|发展|吸引|降低",
        adjs="稳定|活跃|健康|明显|持续|平稳",
        metric="销售额|利润|就业人数|增长率",
        actions="扩大出口贸易|支持中小企业|稳定物价|增加就业岗位|改善营商环境|降低贷款利率|发展网络销售|建设产业园区",
    ),
    "体育": dict(
        agents="运动员|教练员|体育爱好者|中学生|裁判|俱乐部",
        nouns="全民健身|马拉松比赛|篮球场|游泳馆|训练方法|体育课|足球联赛|健身步道|体质测试|运动会|乒乓球|登山活动",
        verbs="参加|组织|训练|建设|举办|推广|改进|报名|完成|开放",
        adjs="激烈|精彩|科学|充足|积极|广泛",
        metric="参赛人数|成绩|训练时间|场馆数量",
        actions="举办马拉松比赛|修建健身步道|开放学校操场|组织全民健身活动|培训青少年运动员|改进训练方法|建设游泳馆|推广乒乓球运动",
    ),
    "气象": dict(
        agents="气象员|农户|防汛人员|研究人员|渔民|市民",
        nouns="降雨|气温|台风|干旱|天气预报|暴雨|寒潮|积雪|气候变化|观测站|洪水|雾霾",
        verbs="预测|监测|观测|记录|防范|分析|应对|发布|评估|研究",
        adjs="准确|异常|持续|偏高|偏少|明显",
        metric="降水量|平均气温|预报准确率|观测次数",
        actions="发布天气预报|监测台风路径|记录降水量|防范暴雨灾害|建设观测站|分析气候变化|应对寒潮天气|评估干旱影响",
    ),
    "社区": dict(
        agents="社区工作者|老年人|志愿者|物业公司|居民代表|年轻父母",
        nouns="养老服务|社区食堂|老旧小区|健身设施|邻里关系|托育服务|便民服务|垃圾清运|停车位|社区活动|电梯加装|文化站",
        verbs="改造|提供|组织|完善|解决|协调|建立|开展|增加|管理",
        adjs="方便|温馨|周到|规范|整洁|和谐",
        metric="服务人次|满意度|参与户数|覆盖率",
        actions="改造老旧小区|开办社区食堂|加装电梯|增加停车位|提供托育服务|组织邻里活动|完善便民服务|照顾独居老人",
    ),
    "制造": dict(
        agents="工人|技术员|企业家|质检人员|工程师|车间主任",
        nouns="生产线|零部件|产品质量|自动化设备|原材料|订单|工厂|安全生产|出口产品|仓库|模具|节能改造",
        verbs="生产|加工|检测|升级|改造|采购|交付|组装|管理|优化",
        adjs="精细|高效|稳定|严格|可靠|现代",
        metric="产量|合格率|订单量|能耗",
        actions="升级生产线|检测产品质量|采购原材料|交付出口订单|推进节能改造|引进自动化设备|加强安全生产|培训技术工人",
    ),
}

# Templates: {T} time, {CITY}, {PROV}, {AG} agents, {ADVB}, {V}/{V2} verbs, {N}/{N2}/{N3} nouns, {ADJ}, {ORG},
# {PERSON}, {EXPERT}, {NUM}, {PCT}, {YEAR}, {METRIC}, {CONN}, {FIELD}, {ACT} a verb-object phrase of the topic
# ("{V}{N}" is turned into {ACT} most of the time, so verbs meet objects they go with).
ZH_TEMPLATES = [
    "{T}，{CITY}的{AG}{ADVB}{V}{N}，取得了{ADJ}的效果。",
    "据{ORG}介绍，{CITY}目前已有{NUM}家单位参与{N}的{V}工作。",
    "{PERSON}表示，{V}{N}不仅能够提高{N2}的水平，也有助于{V2}{N3}。",
    "{EXPERT}认为，{N}是{FIELD}发展中的一个重要环节，需要长期坚持下去。",
    "在{N}方面，{AG}还尝试了新的办法，并把经验推广到周边地区。",
    "与过去相比，{N}的成本下降了{PCT}，{AG}的负担也随之减轻。",
    "为了{V}{N}，{ORG}专门成立了工作小组，定期听取{AG}的意见。",
    "许多{AG}反映，{N}在实际使用过程中仍然存在一些问题。",
    "{CONN}，{AG}普遍认为{N}还有很大的提升空间。",
    "这项工作从{YEAR}年开始，一直坚持到现在，积累了不少经验。",
    "{PROV}省{CITY}县的{AG}告诉记者，他们每天都要{V}{N}。",
    "统计数据显示，{T}全县{METRIC}同比增长了{PCT}。",
    "{PERSON}是一名普通的{AG_ONE}，他在这个岗位上已经工作了{NUM}年。",
    "如何{V}{N}，是摆在{AG}面前的一道难题。",
    "{ORG}负责人说，下一步将继续{V}{N}，让更多群众受益。",
    "有的{AG}一开始并不理解，后来看到了实实在在的变化。",
    "在{CITY}，{N}和{N2}已经成为人们经常讨论的话题。",
    "{T}，{ORG}投入资金{NUM}万元，用于{V}{N}。",
    "不少{AG}表示，希望有关部门能够进一步{V}{N}。",
    "{N}的{V}离不开{AG}的支持和参与。",
    "据了解，这批{N}将在{MONTH}月底前全部完成{V}。",
    "{CONN}，{CITY}还把{N}纳入了年度重点工作计划。",
    "{EXPERT}提醒，{V}{N}的时候一定要注意安全，不能只看眼前利益。",
    "走进{CITY}的{N}，可以看到{AG}正在忙着{V}{N2}。",
    "{PERSON}笑着说，现在{N}比以前{ADJ}多了，大家心里也踏实了。",
    "由于{N}的情况比较复杂，{AG}花了很长时间才找到原因。",
    "{T}，全省共有{NUM}个县参与{ACT}，超额完成了年初的目标。",
    "对于{AG}来说，{N}是关系到日常生活的大事。",
    "调查发现，超过{PCT}的{AG}对{N}表示满意。",
    "{ORG}还邀请{EXPERT}到现场指导，帮助{AG}解决实际困难。",
    "今后，{CITY}将在{N}和{N2}之间寻找新的平衡点。",
    "这些做法被写进了当地的工作手册，供其他地区参考。",
    "{AG}和{AG2}一起商量，最后决定先从{N}做起。",
    "在{PERSON}看来，{V}{N}最重要的是坚持和耐心。",
    "随着{N}的不断完善，{METRIC}也有了明显的提高。",
    "{CITY}地处{PROV}省西部，交通条件曾经比较落后。",
    "一些{AG}担心，{N}的变化会影响到他们的收入。",
    "为此，{ORG}出台了一系列措施，鼓励{AG}{V}{N}。",
]

ZH_TITLE_TEMPLATES = ["{CITY}：{V}{N}见成效", "{N}的{ADJ}之路", "{AG}的{N}故事", "{PROV}{CITY}推进{N}工作"]

ZH_SPAM_LINES = [
    "加微信{N}{N}{N}{N}，低价代开各类发票！",
    "【特价】{P}，全场一折起，先到先得！！！",
    "点击这里免费领取{P}，名额有限",
    "{P}{P}{P}，正品保证，货到付款",
    "招聘兼职打字员，日赚{N}{N}{N}元，在家就能做",
    "彩票内部消息，稳赚不赔，加QQ群{N}{N}{N}{N}{N}",
    "专业刷单刷信誉，价格优惠，欢迎咨询",
    "最新{P}优惠活动，扫码立减{N}{N}元",
]
ZH_SPAM_PRODUCTS = "减肥茶|名牌手表|高仿包包|游戏金币|网络贷款|美白面膜|壮阳保健品|手机靓号".split("|")
ZH_BOILERPLATE_LINES = [
    "首页 | 新闻中心 | 产品展示 | 关于我们 | 联系我们",
    "网站首页 > 新闻动态 > 正文",
    "版权所有 © {YEAR} {CITY}信息网 保留所有权利",
    "备案号：{PROV}ICP备{N}{N}{N}{N}{N}{N}号",
    "上一篇 下一篇",
    "分享到：微信 微博 QQ空间",
    "登录 | 注册 | 帮助",
    "扫一扫，关注我们",
    "责任编辑：{NAME}",
    "相关阅读",
    "热门推荐",
    "联系电话：0{N}{N}{N}-{N}{N}{N}{N}{N}{N}{N}",
    "返回顶部",
    "免责声明：本站部分内容来自网络",
]
ZH_SYMBOLS = list("★☆◆◇■□●○▲△※→←↑↓【】《》～~#＃@＆&*※♥♦♣♠☎✈✔✘→→")


# ---------------------------------------------------------------------------------------------------------------
# English morphology
# ---------------------------------------------------------------------------------------------------------------

_VOWELS = "aeiou"


def _plural(noun: str) -> str:
    if noun.endswith(("s", "x", "z", "ch", "sh")):
        return noun + "es"
    if noun.endswith("y") and noun[-2:-1] not in _VOWELS:
        return noun[:-1] + "ies"
    return noun + "s"


def _third(verb: str) -> str:
    head, _, tail = verb.partition(" ")
    if head.endswith(("s", "x", "z", "ch", "sh", "o")):
        head += "es"
    elif head.endswith("y") and head[-2:-1] not in _VOWELS:
        head = head[:-1] + "ies"
    else:
        head += "s"
    return f"{head} {tail}".strip()


def _regular_past(verb: str) -> str:
    if verb in DOUBLING:
        return verb + verb[-1] + "ed"
    if verb.endswith("e"):
        return verb + "d"
    if verb.endswith("y") and verb[-2:-1] not in _VOWELS:
        return verb[:-1] + "ied"
    return verb + "ed"


def _past(verb: str) -> str:
    return IRREGULAR[verb][0] if verb in IRREGULAR else _regular_past(verb)


def _participle(verb: str) -> str:
    return IRREGULAR[verb][1] if verb in IRREGULAR else _regular_past(verb)


def _ing(verb: str) -> str:
    if verb in DOUBLING or verb in ("run", "begin", "dig", "spin", "win", "cut", "put", "set", "split", "shop"):
        return verb + verb[-1] + "ing"
    if verb.endswith("ie"):
        return verb[:-2] + "ying"
    if verb.endswith("e") and not verb.endswith(("ee", "ye", "oe")):
        return verb[:-1] + "ing"
    return verb + "ing"


def _a(phrase: str) -> str:
    first = phrase.split()[0].lower()
    an = first[0] in _VOWELS and not first.startswith(("uni", "use", "eu", "one"))
    return ("an " if an or first.startswith(("hour", "honest")) else "a ") + phrase


def _cap(text: str) -> str:
    for i, ch in enumerate(text):
        if ch.isalpha():
            return text[:i] + ch.upper() + text[i + 1 :]
    return text


def _title(text: str) -> str:
    small = {"a", "an", "the", "of", "and", "in", "on", "to", "for", "from", "with"}
    words = text.split(" ")
    return " ".join(w if (i and w in small) else _cap(w) for i, w in enumerate(words))


@dataclass
class _Topic:
    name: str
    field: str
    agents: list[str]
    roles: list[str]
    nouns: list[tuple[str, str]]
    adjs: list[str]
    verbs: list[str]
    places: list[str]
    actions: list[tuple[str, str]]  # (verb, rest): "back up the database" -> ("back", "up the database")


def _load_topics() -> dict[str, _Topic]:
    topics = {}
    for name, t in TOPICS.items():
        nouns = []
        for item in t["nouns"].split():
            sg, _, pl = item.partition(":")
            nouns.append((sg, pl or _plural(sg)))
        topics[name] = _Topic(
            name=name,
            field=t["field"],
            agents=t["agents"].split("|"),
            roles=t["roles"].split("|"),
            nouns=nouns,
            adjs=t["adjs"].split(),
            verbs=t["verbs"].split(),
            places=t["places"].split("|"),
            actions=[tuple(a.split(" ", 1)) for a in t["actions"].split("|")],
        )
    return topics


_SLOT = re.compile(r"\{([A-Za-z0-9_]+)\}")
_EN_VERB_OBJECT = re.compile(r"\{V(3|D|N|G|)\} \{NP[sp]?\}")


class _EnglishWriter:
    """Fills sentence templates for one topic at a time."""

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.topics = _load_topics()
        self.topic = next(iter(self.topics.values()))
        self.title = ""
        self._headline = False
        self._actions_topic, self._actions = "", []

    # -- pieces -------------------------------------------------------------------------------------------------
    def _noun(self) -> tuple[str, str]:
        return self.rng.choice(self.topic.nouns)

    def _adj(self) -> str:
        r = self.rng
        return r.choice(self.topic.adjs) if r.random() < 0.65 else r.choice(GENERAL_ADJS)

    def _verb(self) -> str:
        r = self.rng
        return r.choice(self.topic.verbs) if r.random() < 0.7 else r.choice(GENERAL_VERBS)

    def _np_sg(self) -> str:
        r, (sg, _) = self.rng, self._noun()
        k = r.random()
        if k < 0.35:
            return f"the {self._adj()} {sg}"
        if k < 0.55:
            return _a(f"{self._adj()} {sg}")
        if k < 0.75:
            return f"the {sg}"
        if k < 0.87:
            return f"{r.choice(('this', 'that', 'their', 'our', 'every'))} {sg}"
        return f"the {sg} {r.choice(self.topic.places)}" if r.random() < 0.3 else f"the {sg} in {r.choice(TOWNS)}"

    def _np_pl(self) -> str:
        r, (_, pl) = self.rng, self._noun()
        k = r.random()
        if k < 0.3:
            return f"{self._adj()} {pl}"
        if k < 0.5:
            return f"the {pl}"
        if k < 0.65:
            return f"the {self._adj()} {pl}"
        if k < 0.8:
            return f"{r.choice(('these', 'those', 'such', 'older', 'newer', 'most'))} {pl}"
        return f"{r.choice(QUANTIFIERS)} {pl}"

    def _person(self) -> str:
        r = self.rng
        name = f"{r.choice(FIRST_NAMES)} {r.choice(LAST_NAMES)}"
        return ("Dr " + name) if r.random() < 0.15 else name

    def _time(self) -> str:
        r = self.rng
        return r.choice((
            f"in {r.randint(1850, 2022)}",
            f"during the {r.choice(SEASONS)}",
            f"over the past {r.choice(NUMBER_WORDS)} years",
            f"last {r.choice(SEASONS)}",
            f"in the early {r.randint(186, 201)}0s",
            f"in {r.choice(MONTHS)} {r.randint(1900, 2023)}",
            "a few years ago",
            f"before {r.randint(1900, 2020)}",
            f"after the {r.choice(('war', 'floods', 'fire', 'merger', 'election', 'storm'))}",
            f"for most of the {r.choice(('nineteenth', 'twentieth'))} century",
            "in the following decade",
            "soon afterwards",
        ))

    def _place(self) -> str:
        r = self.rng
        if r.random() < 0.55:
            return r.choice(self.topic.places)
        return r.choice((f"in {r.choice(TOWNS)}", f"across {r.choice(REGIONS)}", f"near {r.choice(TOWNS)}",
                         f"around {r.choice(TOWNS)}", f"in {r.choice(REGIONS)}"))

    def slot(self, name: str) -> str:  # a flat dispatch table reads best here
        r = self.rng
        if name.endswith("c") and name[:-1] in _CAP_SLOTS:  # capitalised: title case in headlines
            return (_title if self._headline else _cap)(self.slot(name[:-1]))
        if name == "NOUN":
            return self._noun()[0]
        if name in ("NOUNp", "NOUNp2"):
            return self._noun()[1]
        if name == "NPs":
            return self._np_sg()
        if name == "NPp":
            return self._np_pl()
        if name == "NP":
            return self._np_sg() if r.random() < 0.5 else self._np_pl()
        if name == "SUBJs":  # mostly people and organisations: they are the ones doing things
            k = r.random()
            if k < 0.35:
                return self._person()
            if k < 0.55:
                return r.choice(ORGS)
            if k < 0.75:
                adj = r.choice(("local", "new", "retired", "young", "chief", "senior"))
                return f"the {adj} {r.choice(self.topic.roles)}"
            return self._np_sg()
        if name == "SUBJp":
            k = r.random()
            if k < 0.45:
                return r.choice(self.topic.agents)
            if k < 0.8:
                adj = r.choice(("local", "many", "younger", "experienced", "some", "most"))
                return f"{adj} {r.choice(self.topic.agents)}"
            return self._np_pl()
        if name == "AG":
            return r.choice(self.topic.agents)
        if name == "V":
            return self._verb()
        if name == "V3":
            return _third(self._verb())
        if name == "VD":
            return _past(self._verb())
        if name == "VN":
            return _participle(self._verb())
        if name == "VG":
            return _ing(self._verb())
        if name in ("ADJ", "ADJ2"):
            return self._adj()
        if name == "ADV":
            return r.choice(ADVERBS_MANNER)
        if name == "FREQ":
            return r.choice(ADVERBS_FREQ)
        if name == "DEG":
            return r.choice(ADVERBS_DEGREE)
        if name == "MODAL":
            return r.choice(MODALS)
        if name == "TIME":
            return self._time()
        if name == "TIMEc":
            return _cap(self._time())
        if name == "PLACE":
            return self._place()
        if name == "CONN":
            return r.choice(CONNECTIVES)
        if name == "PERSON":
            return self._person()
        if name == "LAST":
            return r.choice(LAST_NAMES)
        if name == "ROLE":
            return r.choice(self.topic.roles) if r.random() < 0.6 else r.choice(ROLES_GENERAL)
        if name == "TOWN":
            return r.choice(TOWNS)
        if name == "REGION":
            return r.choice(REGIONS)
        if name == "NUM":
            self._num = r.randint(3, 95)
            return str(self._num)
        if name == "NUM2":  # a smaller number than the NUM before it ("fell from 40 to 12")
            return str(r.randint(1, max(1, getattr(self, "_num", 40) - 1)))
        if name == "NUMW":
            return r.choice(NUMBER_WORDS)
        if name == "PCT":
            return str(r.randint(3, 65))
        if name == "YEAR":
            return str(r.randint(1850, 2022))
        if name == "YEAR2":
            return str(r.randint(2025, 2031))
        if name == "BIG":
            return f"{r.randint(2, 95)},{r.randint(0, 999):03d}"
        if name == "ORD":
            return r.choice(("sixteenth", "seventeenth", "eighteenth", "nineteenth", "twentieth"))
        if name == "UNIT":
            return r.choice(("years", "months", "weeks", "days", "seasons"))
        if name == "SEASON":
            return r.choice(SEASONS)
        if name == "DAY":
            return r.choice(DAYS)
        if name == "FIELD":
            return self.topic.field
        if name == "SAY":
            return r.choice(SAY_VERBS)
        if name == "THINK":
            return r.choice(THINK_VERBS)
        if name == "ORG":
            return r.choice(ORGS)
        if name == "QUANT":
            return r.choice(QUANTIFIERS)
        if name in ("ACT", "ACT3", "ACTD", "ACTN", "ACTG"):
            return self._action(name[3:])
        if name == "TITLE":
            return self.title
        raise KeyError(f"unknown template slot {{{name}}}")

    def _action(self, form: str) -> str:
        # drawn without replacement per topic, so one page does not repeat the same phrase
        if self._actions_topic != self.topic.name or not self._actions:
            self._actions_topic, self._actions = self.topic.name, list(self.topic.actions)
            self.rng.shuffle(self._actions)
        verb, rest = self._actions.pop()
        inflect = {"": str, "3": _third, "D": _past, "N": _participle, "G": _ing}[form]
        return f"{inflect(verb)} {rest}"

    def fill(self, template: str) -> str:
        # most verb + object pairs become one of the topic's actions, so verbs meet objects they go with
        template = _EN_VERB_OBJECT.sub(
            lambda m: f"{{ACT{m.group(1)}}}" if self.rng.random() < 0.6 else m.group(0), template
        )
        return _cap(_SLOT.sub(lambda m: self.slot(m.group(1)), template))

    # -- documents ----------------------------------------------------------------------------------------------
    def _sentences(self, templates: list[str]):
        pool: list[str] = []
        while True:
            if not pool:
                pool = list(templates)
                self.rng.shuffle(pool)
            yield self.fill(pool.pop())

    def paragraphs(self, n_words: int, extra: list[str], per_para: tuple[int, int] = (3, 6)) -> list[str]:
        gen = self._sentences(EN_TEMPLATES_GENERAL + extra)
        paras, words = [], 0
        while words < n_words:
            sents = []
            for _ in range(self.rng.randint(*per_para)):
                s = next(gen)
                sents.append(s)
                words += len(s.split())
                if words >= n_words:
                    break
            paras.append(" ".join(sents))
        return paras

    def headline(self, templates: list[str]) -> str:
        self._headline = True
        try:
            return _SLOT.sub(lambda m: self.slot(m.group(1)), self.rng.choice(templates))
        finally:
            self._headline = False


_CAP_SLOTS = {"ADJ", "NOUN", "NOUNp", "NOUNp2", "AG", "V", "VG", "FIELD", "REGION", "ORG", "NPs"}


# ---------------------------------------------------------------------------------------------------------------
# English documents per source
# ---------------------------------------------------------------------------------------------------------------


def _words(lo: int, hi: int, rng: random.Random) -> int:
    # skewed towards the short end like real pages, capped at hi
    return min(hi, lo + int(rng.betavariate(1.4, 2.4) * (hi - lo)))


_MAX_WORDS = 600


def _cap_words(head: list[str], paras: list[str], limit: int = _MAX_WORDS) -> list[str]:
    """Drop trailing paragraphs until title + body fit in ``limit`` words (the length range is 80-600)."""
    while len(paras) > 1 and sum(len(x.split()) for x in head + paras) > limit:
        paras = paras[:-1]
    return paras


def _en_good(w: _EnglishWriter, source: str, rng: random.Random) -> dict:
    topic = rng.choice(list(w.topics))
    w.topic = w.topics[topic]
    lo, hi = _LENGTHS[source]
    n = _words(lo, hi, rng)
    if source == "web":
        title = w.headline(EN_TITLE_TEMPLATES)
        paras = w.paragraphs(n, EN_TEMPLATES_WEB)
        if rng.random() < 0.15 and len(paras) > 1:  # a numbered list of full-sentence steps
            steps = [w.fill(t) for t in rng.sample(EN_TEMPLATES_WEB[:4] + EN_TEMPLATES_GENERAL[:8], 3)]
            paras.insert(rng.randint(1, len(paras) - 1), "\n".join(f"{i}. {s}" for i, s in enumerate(steps, 1)))
        sep = "\n" if rng.random() < 0.6 else "\n\n"
        head = [title] if rng.random() < 0.6 else []
        text = sep.join(head + _cap_words(head, paras))
        return dict(text=text, title=title, topic=topic)
    if source == "c4":
        title = w.headline(EN_TITLE_TEMPLATES)
        paras = w.paragraphs(n, EN_TEMPLATES_C4 + EN_TEMPLATES_WEB, per_para=(1, 4))
        return dict(text="\n".join(_cap_words([], paras)), title=title, topic=topic)
    if source == "wiki":
        w.title = w.headline(WIKI_TITLE_TEMPLATES)
        paras = _cap_words([], w.paragraphs(n, EN_TEMPLATES_WIKI), _MAX_WORDS - 8)  # room for section headings
        heads = rng.sample(WIKI_SECTIONS, k=min(len(paras) - 1, rng.randint(0, 3))) if len(paras) > 2 else []
        out = [paras[0]]
        for i, p in enumerate(paras[1:]):
            if heads and i % 2 == 0:
                out.append(heads.pop())
            out.append(p)
        return dict(text="\n\n".join(out), title=w.title, topic=topic)
    if source == "news":
        headline = w.headline(EN_TITLE_TEMPLATES)
        paras = _cap_words([headline], w.paragraphs(n, EN_TEMPLATES_NEWS, per_para=(1, 3)))
        return dict(text="\n\n".join(paras), title=headline, topic=topic)
    raise ValueError(source)


def _en_spam(rng: random.Random) -> str:
    product = rng.choice(SPAM_PRODUCTS)
    lines = []
    for tpl in rng.sample(SPAM_LINES, rng.randint(4, 6)):
        lines.append(tpl.replace("{P}", product.upper()).replace("{p}", product)
                     .replace("{N}", str(rng.randint(10, 99))))
    page = []
    for _ in range(rng.randint(4, 7)):  # keyword-stuffed pages repeat their lines
        rng.shuffle(lines)
        page.extend(lines)
    return "\n".join(page)


_C4_DROPS_LINE = ("javascript", "terms of use", "privacy policy", "cookie policy", "uses cookies", "use of cookies",
                  "use cookies")


def _en_boilerplate(w: _EnglishWriter, rng: random.Random) -> str:
    """A page whose main text the extractor missed: menu, cookie banner, at most one sentence, footer.

    Like such pages, it is mostly one- and two-word lines (menu items, footer links); at most three lines are
    "sentences" in C4's sense (three words or more, no cookie / policy / javascript wording).
    """
    w.topic = w.topics[rng.choice(list(w.topics))]
    company = f"{rng.choice(TOWNS)} {rng.choice(('Media', 'Group', 'Online', 'Press', 'Digital'))}"

    def fmt(line: str) -> str:
        return (line.replace("{YEAR}", str(rng.randint(2012, 2024))).replace("{COMPANY}", company)
                .replace("{TOPIC}", w.topic.field).replace("{N}", str(rng.randint(0, 9))))

    dropped = [x for x in BOILERPLATE_LINES if any(k in x.lower() for k in _C4_DROPS_LINE)]
    tiny = [x for x in BOILERPLATE_LINES if x not in dropped and len(x.split()) < 3]
    counted = [x for x in BOILERPLATE_LINES if x not in dropped and x not in tiny and x != "Skip to main content"]
    lines = rng.sample(NAV_ITEMS, rng.randint(10, 16))
    lines.insert(0, "Skip to main content")  # counted: 1
    lines.append(fmt(rng.choice([x for x in dropped if "cookie" in x.lower()])))
    if rng.random() < 0.5:
        lines.append(w.fill(rng.choice(EN_TEMPLATES_GENERAL)))  # counted: 2
    else:
        lines.append(fmt(rng.choice(counted)))  # counted: 2
    lines.append(fmt(rng.choice(counted)))  # counted: 3
    lines += [fmt(x) for x in rng.sample(dropped, rng.randint(0, 2)) if x not in lines]
    lines += [fmt(x) for x in rng.sample(tiny, rng.randint(3, len(tiny)))]
    return "\n".join(lines)


def _foreign(lang: str, rng: random.Random, n_words: int) -> str:
    g = FOREIGN[lang]
    lists = {k: g[k].split("|") for k in ("agents", "verbs", "infs", "objs", "places", "times", "conns")}

    def fill(tpl: str) -> str:
        def sub(m: re.Match) -> str:
            key = m.group(1)
            if key == "AGc":
                return _cap(rng.choice(lists["agents"]))
            return rng.choice(lists[{"CONN": "conns", "AG": "agents", "V": "verbs", "INF": "infs", "OBJ": "objs",
                                     "PLACE": "places", "TIME": "times"}[key]])

        return _cap(_SLOT.sub(sub, tpl))

    paras, words, pool = [], 0, []
    while words < n_words:
        sents = []
        for _ in range(rng.randint(3, 5)):
            if not pool:
                pool = list(g["templates"])
                rng.shuffle(pool)
            sents.append(fill(pool.pop()))
            words += len(sents[-1].split())
        paras.append(" ".join(sents))
    return "\n".join(paras)


def _en_repetition(w: _EnglishWriter, source: str, rng: random.Random, variant: int) -> str:
    w.topic = w.topics[rng.choice(list(w.topics))]
    paras = w.paragraphs(rng.randint(60, 120), [])
    if variant == 0:  # a whole paragraph pasted again and again
        return "\n\n".join(paras + [paras[0]] * rng.randint(4, 7))
    if variant == 1:  # one line repeated between the others
        line = w.fill(rng.choice(EN_TEMPLATES_GENERAL))
        out = []
        for p in paras:
            out += [p, line, line]
        return "\n".join(out + [line] * rng.randint(3, 6))
    # a stuck phrase: the same few words looping
    phrase = " ".join(w.fill(rng.choice(EN_TEMPLATES_GENERAL)).rstrip(".").split()[:5])
    return paras[0] + "\n" + " ".join([phrase] * rng.randint(25, 45)) + ".\n" + "\n".join(paras[1:])


def _en_too_short(w: _EnglishWriter, rng: random.Random) -> str:
    w.topic = w.topics[rng.choice(list(w.topics))]
    if rng.random() < 0.3:
        return w.headline(EN_TITLE_TEMPLATES)
    return " ".join(w.fill(t) for t in rng.sample(EN_TEMPLATES_GENERAL, rng.randint(1, 2)))


def _near_duplicate(text: str, rng: random.Random, w: _EnglishWriter | None, zh: _ChineseWriter | None) -> str:
    """A copy with small edits, as mirrors and reposts make: a byline or date line, one sentence swapped."""
    lines = text.split("\n")
    if zh is not None:
        extra = f"（来源：{rng.choice(ZH_CITIES)}日报，{rng.randint(1, 12)}月{rng.randint(1, 28)}日）"
        lines.append(extra)
    else:
        extra = rng.choice((
            f"Updated on {rng.randint(1, 28)} {rng.choice(MONTHS)} {rng.randint(2015, 2024)}.",
            f"This article was first published by {rng.choice(TOWNS)} Online.",
            f"Written by {w._person()} for the {rng.choice(TOWNS)} newsletter.",
        ))
        if rng.random() < 0.5:
            lines.insert(0, extra)
        else:
            lines.append(extra)
    # longer pages also get one sentence swapped (the last of the longest line); short ones only the extra line,
    # so that every near-duplicate keeps >= 0.8 Jaccard similarity on word 5-grams with its original
    if len(text) < (600 if zh is not None else 1500):
        return "\n".join(lines)
    i = max(range(len(lines)), key=lambda j: len(lines[j]))
    if zh is not None:
        parts = [p for p in lines[i].split("。") if p]
        if len(parts) > 2:
            parts[-1] = zh.fill(rng.choice(ZH_TEMPLATES)).rstrip("。")
            lines[i] = "。".join(parts) + "。"
    else:
        parts = lines[i].split(". ")
        if len(parts) > 2:
            parts[-1] = w.fill(rng.choice(EN_TEMPLATES_GENERAL))
            lines[i] = ". ".join(parts)
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------------------
# Chinese
# ---------------------------------------------------------------------------------------------------------------


_ZH_VERB_OBJECT = re.compile(r"\{V2?\}\{N[23]?\}")


class _ChineseWriter:
    def __init__(self, rng: random.Random):
        self.rng = rng
        self.topics = {k: {f: v.split("|") for f, v in t.items()} for k, t in ZH_TOPICS.items()}
        self.set_topic(next(iter(self.topics)))
        self._used: set[str] = set()

    def set_topic(self, name: str) -> None:
        self.name, self.topic = name, self.topics[name]
        self._actions = []

    def slot(self, name: str) -> str:
        r, t = self.rng, self.topic
        if name == "T":
            return r.choice(ZH_TIMES)
        if name == "CITY":
            return r.choice(ZH_CITIES)
        if name == "PROV":
            return r.choice(ZH_PROVINCES)
        if name in ("AG", "AG2"):
            return r.choice(t["agents"])
        if name == "AG_ONE":
            return r.choice(t["agents"])
        if name == "ADVB":
            return r.choice(ZH_ADVB)
        if name in ("V", "V2"):
            return r.choice(t["verbs"])
        if name in ("N", "N2", "N3"):  # distinct nouns within one sentence
            choices = [n for n in t["nouns"] if n not in self._used] or t["nouns"]
            self._used.add(noun := r.choice(choices))
            return noun
        if name == "ADJ":
            return r.choice(t["adjs"])
        if name == "ORG":
            return r.choice(ZH_ORGS)
        if name == "PERSON":
            return r.choice(ZH_SURNAMES) + r.choice(ZH_GIVEN)
        if name == "EXPERT":
            return r.choice(ZH_EXPERT)
        if name == "NUM":
            return str(r.randint(2, 60))
        if name == "PCT":
            return f"{r.randint(3, 45)}%" if r.random() < 0.5 else f"百分之{r.choice('二三四五六七八九')}十"
        if name == "YEAR":
            return str(r.randint(1998, 2020))
        if name == "MONTH":
            return str(r.randint(1, 12))
        if name == "METRIC":
            return r.choice(t["metric"])
        if name == "ACT":  # without replacement per topic
            if not self._actions:
                self._actions = list(t["actions"])
                r.shuffle(self._actions)
            return self._actions.pop()
        if name == "CONN":
            return r.choice(ZH_CONN)
        if name == "FIELD":
            return self.name
        raise KeyError(f"unknown template slot {{{name}}}")

    def fill(self, template: str) -> str:
        template = _ZH_VERB_OBJECT.sub(lambda m: "{ACT}" if self.rng.random() < 0.7 else m.group(0), template)
        self._used = set()
        return _SLOT.sub(lambda m: self.slot(m.group(1)), template)

    def paragraphs(self, n_chars: int) -> list[str]:
        pool: list[str] = []
        paras, chars = [], 0
        while chars < n_chars:
            sents = []
            for _ in range(self.rng.randint(3, 6)):
                if not pool:
                    pool = list(ZH_TEMPLATES)
                    self.rng.shuffle(pool)
                sents.append(self.fill(pool.pop()))
                chars += len(sents[-1])
                if chars >= n_chars:
                    break
            paras.append("".join(sents))
        return paras


def _zh_good(z: _ChineseWriter, rng: random.Random) -> str:
    z.set_topic(rng.choice(list(z.topics)))
    lo, hi = _LENGTHS["zh"]
    paras = z.paragraphs(_words(lo, hi, rng))
    if rng.random() < 0.4:
        paras.insert(0, z.fill(rng.choice(ZH_TITLE_TEMPLATES)))
    return "\n".join(paras)


def _zh_fmt(line: str, rng: random.Random) -> str:
    line = line.replace("{YEAR}", str(rng.randint(2008, 2023))).replace("{CITY}", rng.choice(ZH_CITIES))
    line = line.replace("{PROV}", rng.choice("浙川湘赣鲁豫闽滇桂甘吉皖鄂陕"))
    line = line.replace("{NAME}", rng.choice(ZH_SURNAMES) + rng.choice(ZH_GIVEN))
    while "{N}" in line:
        line = line.replace("{N}", str(rng.randint(0, 9)), 1)
    return line


def _zh_spam(rng: random.Random) -> str:
    product = rng.choice(ZH_SPAM_PRODUCTS)
    lines = [_zh_fmt(t.replace("{P}", product), rng) for t in rng.sample(ZH_SPAM_LINES, rng.randint(4, 6))]
    page = []
    for _ in range(rng.randint(4, 7)):
        rng.shuffle(lines)
        page.extend(lines)
    return "\n".join(page)


def _zh_boilerplate(z: _ChineseWriter, rng: random.Random) -> str:
    z.set_topic(rng.choice(list(z.topics)))
    lines = [_zh_fmt(x, rng) for x in ZH_BOILERPLATE_LINES[:3]]
    lines += [_zh_fmt(x, rng) for x in rng.sample(ZH_BOILERPLATE_LINES[3:], rng.randint(6, 10))]
    lines.insert(rng.randint(2, 4), z.fill(rng.choice(ZH_TITLE_TEMPLATES)))
    if rng.random() < 0.5:
        lines.insert(rng.randint(3, 5), z.fill(rng.choice(ZH_TEMPLATES)))
    return "\n".join(lines)


def _zh_repetition(z: _ChineseWriter, rng: random.Random, variant: int) -> str:
    z.set_topic(rng.choice(list(z.topics)))
    paras = z.paragraphs(rng.randint(150, 260))
    if variant == 0:
        return "\n".join(paras + [paras[0]] * rng.randint(4, 7))
    if variant == 1:
        line = z.fill(rng.choice(ZH_TEMPLATES))
        out = []
        for p in paras:
            out += [p, line, line]
        return "\n".join(out + [line] * rng.randint(3, 6))
    phrase = z.fill(rng.choice(ZH_TEMPLATES))[:12]
    return paras[0] + "\n" + phrase * rng.randint(20, 35) + "。\n" + "\n".join(paras[1:])


def _zh_too_short(z: _ChineseWriter, rng: random.Random) -> str:
    z.set_topic(rng.choice(list(z.topics)))
    if rng.random() < 0.3:
        return z.fill(rng.choice(ZH_TITLE_TEMPLATES))
    return z.fill(rng.choice(ZH_TEMPLATES))


def _zh_symbol_soup(z: _ChineseWriter, rng: random.Random) -> str:
    z.set_topic(rng.choice(list(z.topics)))
    lines = []
    for _ in range(rng.randint(6, 12)):
        sym = "".join(rng.choice(ZH_SYMBOLS) for _ in range(rng.randint(6, 20)))
        word = z.fill(rng.choice(("{N}", "{V}{N}", "{CITY}", "{ADJ}")))
        lines.append(f"{sym}{word}{sym[::-1]} {rng.randint(100, 99999)} ###")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------------------
# Assembly
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class _Doc:
    kind: str
    text: str
    title: str = ""
    topic: str = ""
    detail: str = ""
    meta: dict = field(default_factory=dict)


def _junk_sequence(plan: dict[str, int]) -> list[str]:
    return [k for k in plan if k not in GOOD_KINDS and k not in DUP_JUNK for _ in range(plan[k])]


def _build_source(source: str, seed: int) -> list[_Doc]:
    rng = random.Random(f"shardsmith-sample:{seed}:{source}")
    plan = PLAN[source]
    docs: list[_Doc] = []
    if source == "zh":
        z = _ChineseWriter(rng)
        w = _EnglishWriter(rng)
        from opencc import OpenCC  # opencc-python-reimplemented; only needed for the traditional pages

        s2t = OpenCC("s2t")
        for _ in range(plan["prose"]):
            docs.append(_Doc("prose", _zh_good(z, rng), topic=z.name))
        for _ in range(plan["traditional"]):
            docs.append(_Doc("traditional", s2t.convert(_zh_good(z, rng)), topic=z.name, detail="s2t"))
        for i, kind in enumerate(_junk_sequence(plan)):
            if kind == "spam":
                docs.append(_Doc(kind, _zh_spam(rng)))
            elif kind == "boilerplate":
                docs.append(_Doc(kind, _zh_boilerplate(z, rng)))
            elif kind == "wrong_language":
                docs.append(_Doc(kind, _en_good(w, "web", rng)["text"], detail="en"))
            elif kind == "repetition":
                docs.append(_Doc(kind, _zh_repetition(z, rng, i % 3), detail=("paragraph", "line", "phrase")[i % 3]))
            elif kind == "too_short":
                docs.append(_Doc(kind, _zh_too_short(z, rng)))
            elif kind == "symbol_soup":
                docs.append(_Doc(kind, _zh_symbol_soup(z, rng)))
        zh_writer, en_writer = z, None
    else:
        w = _EnglishWriter(rng)
        for _ in range(plan["prose"]):
            d = _en_good(w, source, rng)
            docs.append(_Doc("prose", d["text"], title=d["title"], topic=d["topic"]))
        langs = ("fr", "de", "es")
        for i, kind in enumerate(_junk_sequence(plan)):
            if kind == "spam":
                docs.append(_Doc(kind, _en_spam(rng), title="Best deals online"))
            elif kind == "boilerplate":
                docs.append(_Doc(kind, _en_boilerplate(w, rng), title="Home"))
            elif kind == "wrong_language":
                lang = langs[i % 3]
                lo, hi = _LENGTHS[source]
                docs.append(_Doc(kind, _foreign(lang, rng, _words(lo, hi, rng)), title=f"({lang})", detail=lang))
            elif kind == "repetition":
                docs.append(_Doc(kind, _en_repetition(w, source, rng, i % 3),
                                 title=w.headline(EN_TITLE_TEMPLATES), detail=("paragraph", "line", "phrase")[i % 3]))
            elif kind == "too_short":
                docs.append(_Doc(kind, _en_too_short(w, rng), title=w.headline(EN_TITLE_TEMPLATES)))
        zh_writer, en_writer = None, w
    # duplicates of earlier good documents (prose only, so "traditional" stays a clean class)
    originals = [i for i, d in enumerate(docs) if d.kind == "prose"]
    for kind in DUP_JUNK:
        for j in rng.sample(originals, plan[kind]):
            src = docs[j]
            if en_writer is not None:
                en_writer.topic = en_writer.topics[src.topic]
            if zh_writer is not None:
                zh_writer.set_topic(src.topic)
            text = src.text if kind == "exact_duplicate" else _near_duplicate(src.text, rng, en_writer, zh_writer)
            docs.append(_Doc(kind, text, title=src.title, topic=src.topic, meta={"dup_of": j}))
    # interleave junk and good like a crawl would; duplicates keep pointing at their original
    order = list(range(len(docs)))
    rng.shuffle(order)
    position = {old: new for new, old in enumerate(order)}
    shuffled = [docs[i] for i in order]
    for d in shuffled:
        if "dup_of" in d.meta:
            d.meta["dup_of"] = position[d.meta["dup_of"]]
    _add_metadata(source, shuffled, rng)
    return shuffled


_DOMAIN_A = ("the", "daily", "my", "old", "little", "green", "north", "open", "quiet", "second", "river", "hill")
_DOMAIN_B = ("journal", "notes", "ledger", "review", "almanac", "gazette", "workshop", "diary", "post", "field",
             "times", "letters")


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:60] or "page"


def _add_metadata(source: str, docs: list[_Doc], rng: random.Random) -> None:
    for i, d in enumerate(docs):
        junk = d.kind not in GOOD_KINDS
        if d.kind in ("spam",):
            domain = rng.choice(SPAM_DOMAINS)
        elif d.topic:
            tld = rng.choice(("com", "org", "net", "co.uk"))
            domain = f"{rng.choice(_DOMAIN_A)}{d.topic.lower()}{rng.choice(_DOMAIN_B)}.{tld}"
        else:
            domain = f"{rng.choice(_DOMAIN_A)}{rng.choice(_DOMAIN_B)}.{rng.choice(('com', 'org', 'net'))}"
        if source == "zh":
            domain = f"www.{rng.choice(('news', 'info', 'bbs', 'blog'))}{rng.randint(1, 999)}.cn"
        d.meta["url"] = f"https://{domain}/{rng.randint(2008, 2023)}/{_slug(d.title or d.kind)}-{i}"
        d.meta["id"] = f"<urn:uuid:{uuid.UUID(int=rng.getrandbits(128), version=4)}>"
        if source == "web":
            d.meta["dump"] = rng.choice(("CC-MAIN-2023-50", "CC-MAIN-2024-10", "CC-MAIN-2024-18"))
            if d.kind == "wrong_language":
                d.meta["language_score"] = round(rng.uniform(0.01, 0.2), 6)
            elif junk and d.kind not in DUP_JUNK:
                d.meta["language_score"] = round(rng.uniform(0.45, 0.8), 6)
            else:
                d.meta["language_score"] = round(rng.uniform(0.86, 0.99), 6)
            low = junk and d.kind not in DUP_JUNK
            score = rng.uniform(0.2, 1.4) if low else rng.uniform(1.3, 4.4)
            d.meta["score"] = round(score, 6)
            d.meta["int_score"] = round(score)
        if source == "news":
            cats = [c for c in NEWS_CATEGORIES if d.topic in NEWS_CATEGORY_TOPICS[c]]
            d.meta["category"] = rng.choice(cats or NEWS_CATEGORIES)
        if source == "c4":
            d.meta["timestamp"] = (f"2019-04-{rng.randint(18, 26):02d}T{rng.randint(0, 23):02d}:"
                                   f"{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}Z")


# ---------------------------------------------------------------------------------------------------------------
# Writers (deterministic bytes)
# ---------------------------------------------------------------------------------------------------------------


def _jsonl_bytes(records: list[dict]) -> bytes:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode("utf-8")


def _gzip_bytes(data: bytes) -> bytes:
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=6) as f:
        f.write(data)
    return buf.getvalue()


def _split(n: int, parts: int) -> list[tuple[int, int]]:
    step = -(-n // parts)
    return [(i, min(n, i + step)) for i in range(0, n, step)]


def _write_source(source: str, docs: list[_Doc], root: Path) -> list[tuple[str, int, _Doc]]:
    """Write one source under ``root/<folder>``; return (relative file, row, doc) for every document."""
    folder = SOURCES[source][2]
    out = root / folder
    out.mkdir(parents=True)
    placed: list[tuple[str, int, _Doc]] = []
    if source == "web":
        import pyarrow as pa
        import pyarrow.parquet as pq

        for part, (a, b) in enumerate(_split(len(docs), _FILES_PER_SOURCE[source])):
            chunk = docs[a:b]
            table = pa.table({
                "text": pa.array([d.text for d in chunk], pa.string()),
                "id": pa.array([d.meta["id"] for d in chunk], pa.string()),
                "dump": pa.array([d.meta["dump"] for d in chunk], pa.string()),
                "url": pa.array([d.meta["url"] for d in chunk], pa.string()),
                "language": pa.array(["en"] * len(chunk), pa.string()),
                "language_score": pa.array([d.meta["language_score"] for d in chunk], pa.float64()),
                "score": pa.array([d.meta["score"] for d in chunk], pa.float64()),
                "int_score": pa.array([d.meta["int_score"] for d in chunk], pa.int64()),
            })
            name = f"{part:03d}_00000.parquet"
            pq.write_table(table, out / name, compression="snappy", use_dictionary=False, write_statistics=False)
            placed += [(f"{folder}/{name}", r, d) for r, d in enumerate(chunk)]
    elif source == "c4":
        parts = _split(len(docs), _FILES_PER_SOURCE[source])
        for part, (a, b) in enumerate(parts):
            chunk = docs[a:b]
            name = f"c4-train.{part:05d}-of-{len(parts):05d}.json.gz"
            recs = [{"text": d.text, "timestamp": d.meta["timestamp"], "url": d.meta["url"]} for d in chunk]
            (out / name).write_bytes(_gzip_bytes(_jsonl_bytes(recs)))
            placed += [(f"{folder}/{name}", r, d) for r, d in enumerate(chunk)]
    elif source == "wiki":
        name = "enwiki-sample.jsonl"
        (out / name).write_bytes(_jsonl_bytes([{"title": d.title, "text": d.text} for d in docs]))
        placed += [(f"{folder}/{name}", r, d) for r, d in enumerate(docs)]
    elif source == "news":
        counters: dict[str, int] = {}
        for d in docs:
            cat = d.meta["category"]
            counters[cat] = counters.get(cat, 0) + 1
            rel = f"{folder}/{cat}/{counters[cat]:03d}.txt"
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            headline = d.title
            if d.kind == "wrong_language":  # the article's own first words, cut at a word boundary
                headline = d.text.split(". ")[0][:70].rsplit(" ", 1)[0]
            (root / rel).write_bytes(f"{headline}\n\n{d.text}\n".encode())
            placed.append((rel, -1, d))
    elif source == "zh":
        name = "2021-31_zh_head_0000_sample.jsonl"
        (out / name).write_bytes(_jsonl_bytes([{"text": d.text} for d in docs]))
        placed += [(f"{folder}/{name}", r, d) for r, d in enumerate(docs)]
    return placed


def _folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _manifest(seed: int, root: Path, placed: dict[str, list[tuple[str, int, _Doc]]]) -> str:
    lines = [
        "# shardsmith embedded sample corpus",
        f"# seed: {seed}",
        "# written by shardsmith.demo.mix_corpus.write_sample_corpus; every word is generated by the project",
        "# (invented lexicon and templates, no third-party text). LABELS.tsv labels every document.",
        "# good = should survive the default filters; junk = should be dropped by language ID / quality filters;",
        "# duplicates pass the quality filters and are only removed by deduplication.",
        "",
        "[sources]",
        "source\tkind\tlanguage\tpath\tfiles\tdocuments\tgood\tjunk\tduplicates\tbytes\ttext_chars",
    ]
    for source, rows in placed.items():
        kind, lang, folder = SOURCES[source]
        files = len({f for f, _, _ in rows})
        good = sum(d.kind in GOOD_KINDS for _, _, d in rows)
        dups = sum(d.kind in DUP_JUNK for _, _, d in rows)
        chars = sum(len(d.text) for _, _, d in rows)
        lines.append(f"{source}\t{kind}\t{lang}\t{folder}\t{files}\t{len(rows)}\t{good}\t{len(rows) - good - dups}\t"
                     f"{dups}\t{_folder_bytes(root / folder)}\t{chars}")
    lines += ["", "[documents by kind]", "source\tcategory\tkind\tdocuments\tshare"]
    for source, rows in placed.items():
        for kind in PLAN[source]:
            n = sum(d.kind == kind for _, _, d in rows)
            cat = "good" if kind in GOOD_KINDS else ("duplicate" if kind in DUP_JUNK else "junk")
            lines.append(f"{source}\t{cat}\t{kind}\t{n}\t{100 * n / len(rows):.1f}%")
    lines += [
        "",
        "[what each junk kind is and which filter should catch it]",
        "spam\tad / keyword-stuffed pages whose lines repeat -> gopher_repetition (dup lines), quality filters",
        "boilerplate\tnavigation menus, cookie banners, footers -> fineweb_quality (short lines), c4_quality",
        "wrong_language\tFrench / German / Spanish prose in English sources, English in zh -> language",
        "repetition\ta paragraph, a line or a phrase repeated many times -> gopher_repetition",
        "too_short\ta title or one or two sentences -> gopher_quality (short doc), c4_quality (few sentences)",
        "symbol_soup\t(zh) lines of symbols around a few words -> gopher_quality (alpha ratio, hashes)",
        "near_duplicate\ta good page with a byline/date line added and one sentence swapped -> dedup only",
        "exact_duplicate\ta good page copied verbatim (another url / id / category) -> dedup only",
        "traditional\t(zh, good) traditional-Chinese copy of good prose -> kept; opencc_t2s makes it simplified",
    ]
    return "\n".join(lines) + "\n"


def _labels(placed: dict[str, list[tuple[str, int, _Doc]]]) -> str:
    out = ["source\tfile\trow\tcategory\tkind\tdetail"]
    for source, rows in placed.items():
        where = {id(d): (f, r) for f, r, d in rows}
        docs = [d for _, _, d in rows]
        for f, r, d in rows:
            cat = "good" if d.kind in GOOD_KINDS else ("duplicate" if d.kind in DUP_JUNK else "junk")
            detail = d.detail
            if "dup_of" in d.meta:
                of_file, of_row = where[id(docs[d.meta["dup_of"]])]
                detail = f"{of_file}:{of_row}"
            out.append(f"{source}\t{f}\t{r}\t{cat}\t{d.kind}\t{detail}")
    return "\n".join(out) + "\n"


def write_sample_corpus(dest: Path, seed: int = 0) -> dict[str, Path]:
    """Write the sample corpus under ``dest``; return ``{source name: folder}`` (web, c4, wiki, news, zh).

    Only the five source folders, ``MANIFEST.txt`` and ``LABELS.tsv`` inside ``dest`` are replaced; other files
    there are left alone. Everything is written to a temporary folder first and moved in at the end, the
    manifest last, so a crash never leaves a corpus that looks complete.
    """
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    tmp = dest / f".sample-tmp-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    try:
        placed = {source: _write_source(source, _build_source(source, seed), tmp) for source in SOURCES}
        (tmp / LABELS_NAME).write_text(_labels(placed), encoding="utf-8")
        manifest = _manifest(seed, tmp, placed)
        (dest / MANIFEST_NAME).unlink(missing_ok=True)
        for _, _, folder in SOURCES.values():
            if (dest / folder).exists():
                shutil.rmtree(dest / folder)
            (tmp / folder).rename(dest / folder)
        (tmp / LABELS_NAME).replace(dest / LABELS_NAME)
        part = dest / f".{MANIFEST_NAME}.tmp"
        part.write_text(manifest, encoding="utf-8")
        part.replace(dest / MANIFEST_NAME)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {source: dest / folder for source, (_, _, folder) in SOURCES.items()}


def read_labels(dest: Path) -> list[dict[str, str]]:
    """Rows of ``LABELS.tsv``: source, file, row (-1 for one-file documents), category, kind, detail."""
    lines = (Path(dest) / LABELS_NAME).read_text(encoding="utf-8").splitlines()
    header = lines[0].split("\t")
    return [dict(zip(header, line.split("\t"))) for line in lines[1:]]


def main(argv: list[str] | None = None) -> int:
    import argparse
    import time

    p = argparse.ArgumentParser(description="write shardsmith's embedded sample corpus")
    p.add_argument("dest", type=Path)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    t0 = time.perf_counter()
    folders = write_sample_corpus(args.dest, args.seed)
    print((args.dest / MANIFEST_NAME).read_text(encoding="utf-8"))
    print(f"wrote {len(folders)} sources to {args.dest} in {time.perf_counter() - t0:.2f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
