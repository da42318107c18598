#!/usr/bin/env python3
"""Generate examples/demo-events.jsonl: demo CloudEvents for ecpat-indicators.

Deterministic (fixed seed, standard library only). Run from anywhere:

    python3 examples/generate_demo.py

It writes one CloudEvent 1.0 JSON object per line, covering the 11 event types of
docs/events.md with dates in 2018-2021, then:

1. checks every event against the envelope and record rules (sections 2-3) and stops
   with an error if one is invalid;
2. reads the written file back and prints to stderr the expected "all" total of each of
   the 13 indicators, computed by a small independent implementation of section 4
   (latest version by (time, source, id) wins, withdrawals remove the record).

The data are realistic but invented: ids, figures and URLs are illustrations.
"""

import json
import random
import re
import sys
import uuid
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

SEED = 20180101
OUT = Path(__file__).resolve().parent / "demo-events.jsonl"

COLLECTOR = "urn:ecpat:fr:social-collector"
RESEARCH = "urn:ecpat:fr:research-team"
ADVOCACY = "urn:ecpat:fr:advocacy-team"
PROGRAMME = "urn:ecpat:fr:programme"

T_SOCIAL = "org.ecpat.social.metrics.snapshot"
T_PUBLICATION = "org.ecpat.research.publication.recorded"
T_SUBMISSION = "org.ecpat.un.submission.recorded"
T_RECOMMENDATION = "org.ecpat.un.recommendation.outcome"
T_STORY = "org.ecpat.media.story.recorded"
T_INITIATIVE = "org.ecpat.advocacy.initiative.recorded"
T_PARTICIPATION = "org.ecpat.survivors.participation.recorded"
T_OUTREACH = "org.ecpat.children.outreach.recorded"
T_TRAINING = "org.ecpat.capacity.training.recorded"
T_EXPERTISE = "org.ecpat.member.expertise.assessed"
T_WITHDRAWN = "org.ecpat.record.withdrawn"

rng = random.Random(SEED)


# --- Time zones (fixed rules, so the output never depends on the host's tz data) ---


def _last_sunday(year, month):
    d = (date(year + 1, 1, 1) if month == 12 else date(year, month + 1, 1)) - timedelta(days=1)
    return d - timedelta(days=(d.weekday() - 6) % 7)


def _nth_sunday(year, month, n):
    d = date(year, month, 1)
    d += timedelta(days=(6 - d.weekday()) % 7)
    return d + timedelta(weeks=n - 1)


def _eu_summer(utc):
    start = datetime.combine(_last_sunday(utc.year, 3), datetime.min.time(), timezone.utc) + timedelta(hours=1)
    end = datetime.combine(_last_sunday(utc.year, 10), datetime.min.time(), timezone.utc) + timedelta(hours=1)
    return start <= utc < end


def _us_summer(utc):
    start = datetime.combine(_nth_sunday(utc.year, 3, 2), datetime.min.time(), timezone.utc) + timedelta(hours=7)
    end = datetime.combine(_nth_sunday(utc.year, 11, 1), datetime.min.time(), timezone.utc) + timedelta(hours=6)
    return start <= utc < end


ZONES = {
    "cet": lambda u: timedelta(hours=2 if _eu_summer(u) else 1),
    "gmt": lambda u: timedelta(hours=1 if _eu_summer(u) else 0),
    "us-east": lambda u: timedelta(hours=-4 if _us_summer(u) else -5),
    "utc": lambda u: timedelta(0),
    "+01": lambda u: timedelta(hours=1),
    "+03": lambda u: timedelta(hours=3),
    "+07": lambda u: timedelta(hours=7),
    "+08": lambda u: timedelta(hours=8),
    "+09": lambda u: timedelta(hours=9),
    "-06": lambda u: timedelta(hours=-6),
}


def in_zone(zone, utc):
    """The instant `utc` expressed with the zone's offset at that instant."""
    return utc.astimezone(timezone(ZONES[zone](utc)))


def local(zone, y, m, d, hh=10, mm=0, ss=0):
    """An aware datetime for a wall-clock time in a zone (office hours: no DST gap)."""
    naive = datetime(y, m, d, hh, mm, ss)
    guess = (naive - ZONES[zone](naive.replace(tzinfo=timezone.utc))).replace(tzinfo=timezone.utc)
    return in_zone(zone, guess)


def rfc3339(dt, millis=False):
    text = dt.isoformat(timespec="milliseconds" if millis else "seconds")
    return text[:-6] + "Z" if text.endswith("+00:00") and millis else text


def office_time(day, zone="cet", after_days=(1, 21)):
    """When a team recorded a fact dated `day`: some days later, in office hours."""
    d = day + timedelta(days=rng.randint(*after_days))
    while d.weekday() >= 5:
        d += timedelta(days=1)
    return local(zone, d.year, d.month, d.day, rng.randint(9, 17), rng.randint(0, 59), rng.randint(0, 59))


def iso_day(text):
    return date.fromisoformat(text)


# --- Reference data ---

MEMBERS = {
    # code: (zone, weight on social media, handle)
    "ecpat-france": ("cet", 10, "ECPAT_France"),
    "ecpat-belgique": ("cet", 4, "ECPATBelgique"),
    "ecpat-luxembourg": ("cet", 3, "ECPATLuxembourg"),
    "ecpat-uk": ("gmt", 4, "ECPAT_UK"),
    "ecpat-germany": ("cet", 3, "ECPATDeutschland"),
    "ecpat-austria": ("cet", 1, "ECPATAustria"),
    "ecpat-sweden": ("cet", 1, "ECPATSverige"),
    "ecpat-italia": ("cet", 1, "ECPATItalia"),
    "ecpat-netherlands": ("cet", 1, "ECPATNederland"),
    "ecpat-philippines": ("+08", 3, "ECPATPhilippines"),
    "ecpat-taiwan": ("+08", 2, "ECPATTaiwan"),
    "ecpat-japan": ("+09", 1, "ECPATJapan"),
    "ecpat-thailand": ("+07", 1, "ECPATThailand"),
    "ecpat-guatemala": ("-06", 1, "ECPATGuatemala"),
    "ecpat-usa": ("us-east", 2, "ECPATUSA"),
}

PLATFORM_METRICS = {
    "facebook": ["likes", "shares", "comments", "clicks", "impressions"],
    "x": ["likes", "shares", "comments", "clicks", "impressions"],
    "linkedin": ["likes", "shares", "comments", "clicks", "impressions"],
    "instagram": ["likes", "comments", "stories", "views"],
    "youtube": ["views", "likes", "comments", "shares"],
}
PLATFORM_WEIGHTS = [("facebook", 5), ("x", 5), ("linkedin", 2), ("instagram", 2), ("youtube", 1)]

# (publication_id, title, scope, countries, themes, contributed, published_on, extra fields)
PUBLICATIONS = [
    ("ecpat-2018-csam-unidentified-victims",
     "Towards a Global Indicator on Unidentified Victims in Child Sexual Exploitation Material",
     "thematic", [], ["online"], False, "2018-02-26", {}),
    ("ecpat-2018-sectt-summary-paper",
     "Sexual Exploitation of Children in Travel and Tourism: Summary Paper",
     "thematic", [], ["travel_tourism"], True, "2018-03-15", {"doi": "10.5555/ecpat.2018.003"}),
    ("ecpat-2018-global-monitoring-synthesis",
     "Global Monitoring Report on the Status of Action against Sexual Exploitation of Children: Synthesis",
     "global", [], ["legislation", "prostitution", "online", "trafficking"], True, "2018-06-20", {}),
    ("ecpat-fr-2018-panorama-togo",
     "Panorama national : l'exploitation sexuelle des enfants au Togo",
     "national", ["TG"], ["prostitution", "trafficking", "access_to_justice"], True, "2018-09-12", {"language": "fr"}),
    ("ecpat-2018-legal-checklist-online",
     "Legal Checklist: Key Legislative Responses to Online Child Sexual Exploitation",
     "thematic", [], ["legislation", "online"], False, "2018-10-09", {}),
    ("ecpat-fr-2018-panorama-burkina-faso",
     "Panorama national : l'exploitation sexuelle des enfant au Burkina Faso",
     "national", ["BF"], ["prostitution", "travel_tourism"], True, "2018-11-06", {"language": "fr"}),
    ("ecpat-2019-access-to-justice-global",
     "Through the Eyes of the Child: Access to Justice and Remedies for Child Victims of Sexual Exploitation",
     "global", [], ["access_to_justice", "legislation"], True, "2019-02-20", {"doi": "10.5555/ecpat.2019.011"}),
    ("ecpat-fr-2019-panorama-france",
     "Panorama national : l'exploitation sexuelle des enfants en France",
     "national", ["FR"], ["prostitution", "online", "legislation"], True, "2019-04-24", {"language": "fr"}),
    ("ecpat-lu-2019-country-overview",
     "Country Overview: A Report on the Scale, Scope and Context of the Sexual Exploitation of Children in Luxembourg",
     "national", ["LU"], ["online", "legislation"], False, "2019-05-28", {}),
    ("ecpat-2019-africa-regional-overview",
     "Sexual Exploitation of Children in Africa: A Silent Emergency",
     "regional", ["BF", "BJ", "KE", "MG", "NE", "TG", "UG"], ["prostitution", "travel_tourism", "online"], True,
     "2019-06-13", {}),
    ("ecpat-2019-voluntourism",
     "Voluntourism and Orphanage Tourism: Risks of Sexual Exploitation of Children",
     "thematic", [], ["travel_tourism"], False, "2019-09-27", {}),
    ("ecpat-be-2019-etude-nationale",
     "Étude nationale : l'exploitation sexuelle des mineurs en Belgique",
     "national", ["BE"], ["prostitution", "online"], False, "2019-10-15", {"language": "fr"}),
    ("ecpat-fr-2019-justice-madagascar",
     "L'accès à la justice des enfants victimes d'exploitation sexuelle à Madagascar",
     "national", ["MG"], ["access_to_justice", "recovery_reintegration"], True, "2019-11-20", {"language": "fr"}),
    ("ecpat-2020-covid-online-assessment",
     "COVID-19 and the Sexual Exploitation of Children Online: Rapid Assessment",
     "thematic", [], ["online"], True, "2020-05-06", {}),
    ("ecpat-2020-child-participation-guide",
     "Child and Youth Participation in the Fight against Sexual Exploitation: A Practice Guide",
     "thematic", [], ["child_participation"], True, "2020-06-30", {}),
    ("ecpat-fr-2020-etudes-benin-togo",
     "Études nationales sur l'exploitation sexuelle des enfants au Bénin et au Togo",
     "national", ["BJ", "TG"], ["prostitution", "trafficking", "access_to_justice"], True, "2020-09-17",
     {"language": "fr"}),
    ("ecpat-2020-europe-travel-tourism",
     "Sexual Exploitation of Children in Travel and Tourism in Europe: Regional Overview",
     "regional", [], ["travel_tourism"], True, "2020-10-21", {}),
    ("ecpat-de-2020-lagebericht",
     "Lagebericht: sexuelle Ausbeutung von Kindern in Deutschland",
     "national", ["DE"], ["online", "trafficking"], False, "2020-11-25", {"language": "de"}),
    ("ecpat-ph-2020-country-overview",
     "Country Overview: Sexual Exploitation of Children in the Philippines",
     "national", ["PH"], ["online", "trafficking", "travel_tourism"], False, "2020-12-08", {}),
    ("ecpat-2021-global-boys-initiative",
     "Global Boys Initiative: A Global Review of Existing Literature on the Sexual Exploitation of Boys",
     "global", [], ["other", "recovery_reintegration", "recovery_reintegration"], False, "2021-03-03", {}),
    ("ecpat-2021-compensation-europe",
     "Barriers to Compensation for Child Victims of Sexual Exploitation in Europe",
     "regional", ["BE", "DE", "FR", "LU", "NL"], ["access_to_justice", "legislation"], True, "2021-04-14", {}),
    ("ecpat-2021-disrupting-harm-kenya",
     "Disrupting Harm in Kenya: Evidence on Online Child Sexual Exploitation and Abuse",
     "national", ["KE"], ["online"], False, "2021-05-20", {}),
    ("ecpat-uk-2021-child-trafficking",
     "Child Trafficking and Criminal Exploitation in the UK: National Study",
     "national", ["GB"], ["trafficking", "prostitution"], False, "2021-06-22", {}),
    ("ecpat-2021-disrupting-harm-thailand",
     "Disrupting Harm in Thailand: Evidence on Online Child Sexual Exploitation and Abuse",
     "national", ["th"], ["online"], False, "2021-07-28", {}),
    ("ecpat-tw-2021-online-study",
     "National Study on the Online Sexual Exploitation of Children in Taiwan",
     "national", ["TW"], ["online"], False, "2021-08-30", {}),
    ("ecpat-fr-2021-justice-niger",
     "L'effectivité de l'accès à la justice des enfants victimes d'exploitation sexuelle au Niger",
     "national", ["NE"], ["access_to_justice", "legislation"], True, "2021-10-05", {"language": "fr"}),
    ("ecpat-2021-sport-thematic-paper",
     "Sexual Exploitation and Abuse of Children in Sport: Thematic Paper",
     "thematic", [], ["other"], True, "2021-11-18", {}),
]

# (submission_id, mechanism, country, submitted_on, cycle, in_alliance, members, document)
SUBMISSIONS = [
    ("upr3-sen-2018", "upr", "SN", "2018-03-29", "UPR-3", True, ["ecpat-france"], "A/HRC/WG.6/31/SEN/3"),
    ("crc-bel-2018", "crc", "BE", "2018-06-01", "CRC/C/BEL/5-6", True, ["ecpat-belgique"], None),
    ("crc-ita-2018", "crc", "IT", "2018-06-15", "CRC/C/ITA/5-6", True, ["ecpat-italia"], None),
    ("crc-jpn-2018", "crc", "JP", "2018-07-02", "CRC/C/JPN/4-5", False, ["ecpat-japan"], None),
    ("lanzarote-fra-2018", "council_of_europe", "FR", "2018-09-28", "Lanzarote-2", False, ["ecpat-france"], None),
    ("upr3-mdg-2018", "upr", "MG", "2018-10-04", "UPR-3", True, ["ecpat-france"], "A/HRC/WG.6/33/MDG/3"),
    ("upr3-ita-2019", "upr", "IT", "2019-03-28", "UPR-3", True, ["ecpat-italia"], "A/HRC/WG.6/34/ITA/3"),
    ("srsale-fra-2019", "un_special_procedures", "FR", "2019-04-30", None, False, ["ecpat-france"], None),
    ("iachr-gtm-2019", "iachr", "GT", "2019-05-10", None, True, ["ecpat-guatemala"], None),
    ("upr3-swe-2019", "upr", "SE", "2019-07-11", "UPR-3", False, ["ecpat-sweden"], "A/HRC/WG.6/35/SWE/3"),
    ("acerwc-mdg-2019", "acerwc", "MG", "2019-09-16", None, True, ["ecpat-france"], None),
    ("lanzarote-lux-2019", "council_of_europe", "LU", "2019-10-31", "Lanzarote-2", False, ["ecpat-luxembourg"], None),
    ("acwc-phl-2019", "regional_other", "PH", "2019-11-20", None, True, ["ecpat-philippines"], None),
    ("cedaw-tgo-2019", "un_other", "TG", "2019-12-06", "CEDAW/C/TGO/6-7", True, ["ecpat-france"], None),
    ("srsale-phl-2020", "un_special_procedures", "PH", "2020-06-12", None, False, ["ecpat-philippines"], None),
    ("upr3-ner-2020", "upr", "NG", "2020-07-09", "UPR-3", True, ["ecpat-france"], "A/HRC/WG.6/38/NER/3"),
    ("upr3-aut-2020", "upr", "AT", "2020-07-09", "UPR-3", False, ["ecpat-austria"], "A/HRC/WG.6/37/AUT/3"),
    ("upr3-bel-2020", "upr", "BE", "2020-10-15", "UPR-3", True, ["ecpat-belgique", "ecpat-france"],
     "A/HRC/WG.6/38/BEL/3"),
    ("crc-lux-2020", "crc", "LU", "2020-11-30", "CRC/C/LUX/5-6", True, ["ecpat-luxembourg"], None),
    ("achpr-ner-2020", "achpr", "NE", "2020-12-10", None, True, ["ecpat-france"], None),
    ("upr3-tha-2021", "upr", "TH", "2021-03-25", "UPR-3", True, ["ecpat-thailand"], "A/HRC/WG.6/39/THA/3"),
    ("crc-deu-2021", "crc", "DE", "2021-06-01", "CRC/C/DEU/5-6", True, ["ecpat-germany"], None),
    ("upr3-tgo-2021", "upr", "TG", "2021-07-15", "UPR-3", True, ["ecpat-france"], "A/HRC/WG.6/40/TGO/3"),
    ("greta-fra-2021", "council_of_europe", "FR", "2021-09-10", "GRETA-3", True, ["ecpat-france"], None),
    ("crc-fra-2021", "crc", "FR", "2021-09-30", "CRC/C/FRA/6-7", True, ["ecpat-france", "ecpat-france"], None),
    ("crc-gbr-2021", "crc", "GB", "2021-11-01", "CRC/C/GBR/6-7", True, ["ecpat-uk"], None),
]

# (recommendation_id, mechanism, country, taken_up, document, paragraph, decided_on)
RECOMMENDATIONS = [
    ("crc-gtm-2018-r1", "crc", "GT", True, "CRC/C/GTM/CO/5-6", "39(b)", "2018-02-01"),
    ("crc-gtm-2018-r2", "crc", "GT", False, "CRC/C/GTM/CO/5-6", None, "2018-02-01"),
    ("upr3-fra-2018-r1", "upr", "FR", True, "A/HRC/38/4", "145.112", "2018-06-29"),
    ("upr3-fra-2018-r2", "upr", "FR", True, "A/HRC/38/4", "145.118", "2018-06-29"),
    ("upr3-fra-2018-r3", "upr", "FR", False, "A/HRC/38/4", None, "2018-06-29"),
    ("crc-bel-2019-r1", "crc", "be", True, "CRC/C/BEL/CO/5-6", 24, "2019-02-01"),
    ("crc-bel-2019-r2", "crc", "BE", True, "CRC/C/BEL/CO/5-6", "43(c)", "2019-02-01"),
    ("crc-bel-2019-r3", "crc", "BE", False, "CRC/C/BEL/CO/5-6", None, "2019-02-01"),
    ("crc-ita-2019-r1", "crc", "IT", True, "CRC/C/ITA/CO/5-6", 36, "2019-02-01"),
    ("crc-ita-2019-r2", "crc", "IT", False, "CRC/C/ITA/CO/5-6", None, "2019-02-01"),
    ("crc-jpn-2019-r1", "crc", "JP", True, "CRC/C/JPN/CO/4-5", "47(a)", "2019-02-01"),
    ("crc-jpn-2019-r2", "crc", "JP", True, "CRC/C/JPN/CO/4-5", "47(d)", "2019-02-01"),
    ("upr3-sen-2019-r1", "upr", "SN", True, "A/HRC/40/5", "142.96", "2019-03-14"),
    ("upr3-sen-2019-r2", "upr", "SN", False, "A/HRC/40/5", None, "2019-03-14"),
    ("upr3-mdg-2019-r1", "upr", "MG", True, "A/HRC/41/14", "117.73", "2019-07-11"),
    ("upr3-mdg-2019-r2", "upr", "MG", True, "A/HRC/41/14", "117.80", "2019-07-11"),
    ("upr3-ita-2020-r1", "upr", "IT", True, "A/HRC/43/4", "148.121", "2020-03-13"),
    ("upr3-ita-2020-r2", "upr", "IT", False, "A/HRC/43/4", None, "2020-03-13"),
    ("upr3-swe-2020-r1", "upr", "SE", True, "A/HRC/44/12", "156.89", "2020-07-10"),
    ("upr3-aut-2021-r1", "upr", "AT", True, "A/HRC/47/12", "140.77", "2021-07-09"),
    ("upr3-aut-2021-r2", "upr", "AT", False, "A/HRC/47/12", None, "2021-07-09"),
    ("upr3-ner-2021-r1", "upr", "NE", True, "A/HRC/47/9", "129.102", "2021-07-09"),
    ("upr3-ner-2021-r2", "upr", "NE", True, "A/HRC/47/9", "129.110", "2021-07-09"),
    ("crc-lux-2021-r1", "crc", "LU", True, "CRC/C/LUX/CO/5-6", 33, "2021-06-04"),
    ("crc-lux-2021-r2", "crc", "LU", False, "CRC/C/LUX/CO/5-6", None, "2021-06-04"),
    ("crc-lux-2021-r3", "crc", "LU", True, "CRC/C/LUX/CO/5-6", "34(b)", "2021-06-04"),
    ("upr3-bel-2021-r1", "upr", "BE", True, "A/HRC/48/8", "122.145", "2021-10-08"),
    ("upr3-bel-2021-r2", "upr", "BE", False, "A/HRC/48/8", None, "2021-10-08"),
]

OUTLETS = {
    "ecpat-france": ["Le Monde", "France Info", "La Croix", "Libération", "Ouest-France", "RFI", "France 24"],
    "ecpat-belgique": ["Le Soir", "RTBF", "La Libre Belgique"],
    "ecpat-luxembourg": ["Luxemburger Wort", "L'essentiel", "RTL Lëtzebuerg"],
    "ecpat-uk": ["The Guardian", "BBC News", "The Independent"],
    "ecpat-germany": ["Der Spiegel", "Süddeutsche Zeitung", "Deutsche Welle"],
    "ecpat-philippines": ["Philippine Daily Inquirer", "Rappler", "ABS-CBN News"],
    "ecpat-taiwan": ["Taipei Times", "Focus Taiwan"],
    "ecpat-thailand": ["Bangkok Post"],
    "ecpat-usa": ["The Washington Post", "NPR"],
    "ecpat-sweden": ["Svenska Dagbladet"],
}

INITIATIVES = [
    # (initiative_id, title, private_sector_engagement, partners, started_on)
    ("adv-2018-the-code-tour-operators", "The Code: engaging French tour operators and hotel groups",
     "significant", ["Tour operators' federation", "Hotel groups signatory to The Code"], "2018-01-15"),
    ("adv-2018-dont-look-away-airports", "Don't Look Away! Summer campaign in airports",
     "significant", ["National airline", "Airport operators", "Ministère de l'Europe et des Affaires étrangères"],
     "2018-06-20"),
    ("adv-2018-isp-dialogue", "Dialogue with internet service providers on reporting of child sexual abuse material",
     "limited", ["Internet service providers' association"], "2018-10-02"),
    ("adv-2019-extraterritoriality", "Plaidoyer pour l'extraterritorialité des lois pénales", "none", [], "2019-03-11"),
    ("adv-2019-airline-awareness", "Sensibilisation des voyageurs à bord avec les compagnies aériennes",
     "significant", ["National airline", "Regional airline"], "2019-05-06"),
    ("adv-2020-payment-networks", "Engaging payment networks against the monetisation of abuse material",
     "limited", ["Payment card network", "Banking federation"], "2020-02-17"),
    ("adv-2020-covid-platforms", "COVID-19: alert to online platforms on risks for children in lockdown",
     "limited", ["Social media platforms"], "2020-04-02"),
    ("adv-2020-imprescriptibility", "Plaidoyer pour l'imprescriptibilité des crimes sexuels sur mineurs",
     "none", None, "2020-11-20"),
    ("adv-2021-digital-services-act", "Child protection in the EU Digital Services Act", "limited",
     ["European child rights coalition"], "2021-01-25"),
    ("adv-2021-west-africa-hospitality", "Hôtellerie responsable en Afrique de l'Ouest",
     "significant", ["Hotel groups in Lomé and Ouagadougou", "National tourism offices"], "2021-04-12"),
    ("adv-2021-safe-sport", "Safe sport: preventing sexual exploitation around major sporting events",
     "significant", ["Sports federations", "Event sponsors"], "2021-09-06"),
]

PARTNERS = ["keoogo", "radio-jeunesse-lome", "ong-enfance-benin", "mouvement-enfants-madagascar",
            "jeunes-reporters-niamey"]


# --- Event builder ---

events = []
used_ids = set()


def emit(source, type_, time, data, subject=None, millis=False):
    event_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    assert (source, event_id) not in used_ids
    used_ids.add((source, event_id))
    event = {
        "specversion": "1.0",
        "id": event_id,
        "source": source,
        "type": type_,
        "time": rfc3339(time, millis),
        "datacontenttype": "application/json",
    }
    if subject is not None:
        event["subject"] = subject
    event["data"] = data
    events.append(event)
    return event


def withdraw(source, time, record_type, key, reason):
    return emit(source, T_WITHDRAWN, time, {"record_type": record_type, "key": key, "reason": reason},
                subject=f"{record_type}/" + "/".join(str(v) for v in key.values()))


# --- Social media ---

def snowflake(utc):
    millis = int(utc.timestamp() * 1000) - 1288834974657
    return str((millis << 22) | rng.getrandbits(22))


def post_identity(member, platform, utc):
    handle = MEMBERS[member][2]
    if platform == "facebook":
        page = 100000000000000 + (sum(map(ord, member)) * 7919) % 899999999999999
        post = rng.randrange(10**15, 10**16)
        return f"{page}_{post}", f"https://www.facebook.com/{handle}/posts/{post}"
    if platform == "x":
        post_id = snowflake(utc)
        return post_id, f"https://twitter.com/{handle}/status/{post_id}"
    if platform == "linkedin":
        post_id = f"urn:li:activity:{snowflake(utc)[:19]}"
        return post_id, f"https://www.linkedin.com/feed/update/{post_id}"
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"
    if platform == "instagram":
        code = "B" + "".join(rng.choice(alphabet) for _ in range(10))
        return code, f"https://www.instagram.com/p/{code}/"
    video = "".join(rng.choice(alphabet) for _ in range(11))
    return video, f"https://www.youtube.com/watch?v={video}"


def final_metrics(member, platform):
    reach = MEMBERS[member][1] * rng.randint(300, 1500)
    impressions = reach * rng.randint(2, 6)
    values = {
        "impressions": impressions,
        "views": int(impressions * rng.uniform(0.1, 0.4)),
        "likes": int(impressions * rng.uniform(0.01, 0.04)),
        "shares": int(impressions * rng.uniform(0.002, 0.008)),
        "clicks": int(impressions * rng.uniform(0.004, 0.015)),
        "comments": int(impressions * rng.uniform(0.0005, 0.003)),
        "stories": int(impressions * rng.uniform(0.001, 0.005)),
    }
    return {m: values[m] for m in PLATFORM_METRICS[platform]}


SNAPSHOT_DELAYS = [timedelta(days=1), timedelta(days=7), timedelta(days=30), timedelta(days=90),
                   timedelta(days=365)]
SNAPSHOT_SHARE = [0.55, 0.82, 0.95, 0.99, 1.0]


def social_post(member, platform, published, publication_id, snapshots, url=True, shape="plain"):
    """Emit `snapshots` cumulative snapshots of one post; returns (key, published, last time)."""
    utc = published.astimezone(timezone.utc)
    post_id, link = post_identity(member, platform, utc)
    final = final_metrics(member, platform)
    base = {"platform": platform, "post_id": post_id, "member": member, "published_at": rfc3339(published)}
    if publication_id is not None:
        base["publication_id"] = publication_id
    if url:
        base["url"] = link
    last = None
    for i in range(snapshots):
        share = 1.0 if i == snapshots - 1 else SNAPSHOT_SHARE[i]
        metrics = {m: int(v * share) for m, v in final.items()}
        if shape == "early-likes" and i == 0:
            metrics = {m: metrics[m] for m in metrics if m in ("likes", "shares")}
        if shape == "impressions-only" and i == snapshots - 1 and i > 0:
            metrics = {m: v for m, v in metrics.items() if m in ("impressions", "views")}
        if shape == "likes-drop" and i == snapshots - 1 and i > 0:
            # Spam accounts removed by the platform: the newer total is lower and replaces the older one.
            metrics["likes"] = max(0, int(final["likes"] * SNAPSHOT_SHARE[i - 1]) - rng.randint(5, 15))
        time = utc + SNAPSHOT_DELAYS[i] + timedelta(minutes=rng.randint(0, 50), milliseconds=rng.randint(0, 999))
        emit(COLLECTOR, T_SOCIAL, time, dict(base, metrics=metrics), millis=True)
        last = time
    return {"platform": platform, "post_id": post_id}, utc, last


def weighted(pairs):
    return rng.choices([p for p, _ in pairs], weights=[w for _, w in pairs])[0]


def social_media():
    posts = []
    members = [(m, spec[1]) for m, spec in MEMBERS.items()]
    start, span = datetime(2018, 1, 3, tzinfo=timezone.utc), (datetime(2021, 12, 20, tzinfo=timezone.utc)
                                                              - datetime(2018, 1, 3, tzinfo=timezone.utc)).days
    for i in range(62):
        member = weighted(members)
        platform = weighted(PLATFORM_WEIGHTS)
        day = start + timedelta(days=rng.randrange(span))
        published = local(MEMBERS[member][0], day.year, day.month, day.day, rng.randint(8, 20), rng.randint(0, 59))
        candidates = [p[0] for p in PUBLICATIONS if iso_day(p[6]) <= published.date()]
        publication_id = rng.choice(candidates) if candidates and rng.random() < 0.5 else None
        shape = "early-likes" if i % 9 == 4 else "impressions-only" if i == 17 else "likes-drop" if i == 23 else "plain"
        posts.append(social_post(member, platform, published, publication_id, rng.choice([2, 3, 3, 4, 4, 5]),
                                 url=i % 7 != 3, shape=shape))
    # New year: the attribution year is the UTC year of published_at.
    newyear = [
        ("ecpat-taiwan", "facebook", datetime(2019, 1, 1, 0, 5, tzinfo=timezone(timedelta(hours=8))),
         "ecpat-2018-sectt-summary-paper"),
        ("ecpat-guatemala", "facebook", datetime(2018, 12, 31, 19, 30, tzinfo=timezone(timedelta(hours=-6))),
         "ecpat-2018-global-monitoring-synthesis"),
        ("ecpat-france", "x", datetime(2020, 1, 1, 0, 30, tzinfo=timezone(timedelta(hours=1))),
         "ecpat-fr-2019-panorama-france"),
        ("ecpat-france", "linkedin", datetime(2020, 1, 1, 0, 45, tzinfo=timezone(timedelta(hours=1))), None),
        ("ecpat-philippines", "x", datetime(2021, 1, 1, 7, 45, tzinfo=timezone(timedelta(hours=8))),
         "ecpat-ph-2020-country-overview"),
    ]
    for member, platform, published, publication_id in newyear:
        posts.append(social_post(member, platform, published, publication_id, 3))
    return posts


def social_corrections(posts):
    # A post collected from a page that turned out not to be the member's: withdrawn.
    key, utc, last = posts[5]
    withdraw(COLLECTOR, last + timedelta(days=3), "social_post", key, "page not operated by the member")
    # A post withdrawn during a review, then confirmed: the newer snapshot brings it back.
    key, utc, last = posts[11]
    withdraw(COLLECTOR, last + timedelta(days=1), "social_post", key, "attribution under review")
    snapshot = next(e for e in reversed(events) if e["type"] == T_SOCIAL and e["data"]["post_id"] == key["post_id"])
    restored = dict(snapshot["data"], metrics=dict(snapshot["data"]["metrics"]))
    emit(COLLECTOR, T_SOCIAL, last + timedelta(days=20, seconds=17), restored, millis=True)


def social_backfill(posts):
    """A late re-import of an early snapshot: older than the current version, so it changes nothing."""
    key, utc, last = posts[2]
    first = next(e for e in events if e["type"] == T_SOCIAL and e["data"]["post_id"] == key["post_id"])
    data = dict(first["data"], metrics={m: max(0, v - 3) for m, v in first["data"]["metrics"].items()})
    emit(COLLECTOR, T_SOCIAL, datetime.fromisoformat(first["time"]) - timedelta(hours=6), data, millis=True)


# --- Research, advocacy, programme records ---

def publication_data(p):
    pid, title, scope, countries, themes, contributed, published_on, extra = p
    data = {"publication_id": pid, "title": title, "scope": scope}
    if countries:
        data["countries"] = list(countries)
    if themes:
        data["themes"] = list(themes)
    data["contributed"] = contributed
    data["published_on"] = published_on
    data["url"] = f"https://ecpat.org/resource/{pid}/"
    data.update(extra)
    return data


def research():
    recorded = {}
    for p in PUBLICATIONS:
        data = publication_data(p)
        time = office_time(iso_day(p[6]))
        if p[0] == "ecpat-fr-2021-justice-niger":
            # Both teams recorded it at the same instant: the tie is broken by source, and
            # "urn:ecpat:fr:research-team" > "urn:ecpat:fr:advocacy-team".
            emit(RESEARCH, T_PUBLICATION, time, data, subject=f"publication/{p[0]}")
            emit(ADVOCACY, T_PUBLICATION, time.astimezone(timezone.utc), dict(data, themes=["legislation"]),
                 subject=f"publication/{p[0]}")
        else:
            emit(RESEARCH, T_PUBLICATION, time, data, subject=f"publication/{p[0]}")
        recorded[p[0]] = (time, data)
    return recorded


def research_corrections(recorded):
    # ECPAT France's contribution to the voluntourism paper was confirmed later.
    time, data = recorded["ecpat-2019-voluntourism"]
    emit(RESEARCH, T_PUBLICATION, local("cet", 2019, 12, 2, 15, 12), dict(data, contributed=True),
         subject="publication/ecpat-2019-voluntourism")
    # The German report's release slipped to January: its attribution year moves to 2021.
    time, data = recorded["ecpat-de-2020-lagebericht"]
    emit(RESEARCH, T_PUBLICATION, local("cet", 2021, 1, 18, 11, 40), dict(data, published_on="2021-01-12"),
         subject="publication/ecpat-de-2020-lagebericht")
    # A typo in a title.
    time, data = recorded["ecpat-fr-2018-panorama-burkina-faso"]
    emit(RESEARCH, T_PUBLICATION, time + timedelta(days=2),
         dict(data, title=data["title"].replace("enfant au", "enfants au")),
         subject="publication/ecpat-fr-2018-panorama-burkina-faso")


def research_backfill(recorded):
    """An export from the old spreadsheet re-sends the voluntourism paper as first recorded (older time)."""
    time, data = recorded["ecpat-2019-voluntourism"]
    emit(RESEARCH, T_PUBLICATION, time - timedelta(hours=1), data, subject="publication/ecpat-2019-voluntourism")


def advocacy():
    for sid, mechanism, country, submitted_on, cycle, alliance, members, document in SUBMISSIONS:
        data = {"submission_id": sid, "mechanism": mechanism, "country": country, "submitted_on": submitted_on}
        if cycle:
            data["cycle"] = cycle
        data["in_alliance"] = alliance
        data["members"] = list(members)
        if document:
            data["document"] = document
        time = office_time(iso_day(submitted_on))
        emit(ADVOCACY, T_SUBMISSION, time, data, subject=f"un_submission/{sid}")
        if sid == "upr3-ner-2020":
            # Recorded as NG (Nigeria) by mistake; corrected to NE (Niger).
            emit(ADVOCACY, T_SUBMISSION, time + timedelta(days=9, hours=2), dict(data, country="NE"),
                 subject=f"un_submission/{sid}")

    for rid, mechanism, country, taken_up, document, paragraph, decided_on in RECOMMENDATIONS:
        data = {"recommendation_id": rid, "mechanism": mechanism, "country": country, "taken_up": taken_up}
        if document:
            data["document"] = document
        if paragraph is not None:
            data["paragraph"] = paragraph
        data["decided_on"] = decided_on
        time = office_time(iso_day(decided_on), after_days=(7, 40))
        emit(ADVOCACY, T_RECOMMENDATION, time, data, subject=f"un_recommendation/{rid}")
        if rid == "crc-lux-2021-r2":
            # On re-reading the final concluding observations, the recommendation was taken up.
            emit(ADVOCACY, T_RECOMMENDATION, time + timedelta(days=30),
                 dict(data, taken_up=True, paragraph="21(e)"), subject=f"un_recommendation/{rid}")

    stories = []
    for n in range(34):
        member = rng.choice(sorted(OUTLETS))
        if n % 3 == 0:
            member = "ecpat-france"
        day = date(2018, 1, 10) + timedelta(days=rng.randrange(1440))
        outlet = rng.choice(OUTLETS[member])
        sid = f"story-{day.year}-{n + 1:03d}"
        data = {"story_id": sid, "member": member, "outlet": outlet, "global_advocacy": rng.random() < 0.55,
                "published_on": day.isoformat()}
        if n % 4 != 1:
            data["url"] = f"https://press.example.org/{member}/{day.isoformat()}/{sid}"
        time = office_time(day, after_days=(0, 10))
        emit(ADVOCACY, T_STORY, time, data, subject=f"media_story/{sid}")
        stories.append((time, data))
    # Corrections: a story found to belong to a global campaign; a story recorded twice, withdrawn.
    time, data = next(s for s in stories if not s[1]["global_advocacy"] and s[1]["member"] == "ecpat-taiwan")
    emit(ADVOCACY, T_STORY, time + timedelta(days=14), dict(data, global_advocacy=True),
         subject=f"media_story/{data['story_id']}")
    time, data = stories[8]
    dup_id = data["story_id"] + "-dup"
    emit(ADVOCACY, T_STORY, time + timedelta(minutes=4), dict(data, story_id=dup_id), subject=f"media_story/{dup_id}")
    withdraw(ADVOCACY, time + timedelta(days=6), "media_story", {"story_id": dup_id}, "recorded twice")

    for iid, title, engagement, partners, started_on in INITIATIVES:
        data = {"initiative_id": iid, "title": title, "private_sector_engagement": engagement}
        if partners is not None:
            data["partners"] = partners
        data["started_on"] = started_on
        time = office_time(iso_day(started_on))
        emit(ADVOCACY, T_INITIATIVE, time, data, subject=f"advocacy_initiative/{iid}")
        if iid == "adv-2020-payment-networks":
            # Two payment networks signed up in the autumn: engagement became significant.
            emit(ADVOCACY, T_INITIATIVE, local("cet", 2020, 10, 5, 14, 20),
                 dict(data, private_sector_engagement="significant",
                      partners=partners + ["Second payment card network"]),
                 subject=f"advocacy_initiative/{iid}")


PARTICIPATION_COUNTRIES = ["FR", "FR", "BE", "LU", "PH", "PH", "TW", "GT", "MG", "TG", "TG", "BF", "NE", "BJ",
                           "TH", "KE", "GB", "DE", "fr", "MG", "NP"]
OUTREACH_ORGS = [(m, "member") for m in ["ecpat-france", "ecpat-belgique", "ecpat-luxembourg", "ecpat-uk",
                                         "ecpat-philippines", "ecpat-taiwan", "ecpat-germany", "ecpat-guatemala"]]
OUTREACH_ORGS += [(p, "partner") for p in PARTNERS]
TRAININGS = [
    ("trn-2018-lome-child-friendly-justice", "Child-friendly justice for child victims (Lomé)", "2018-04-17",
     ["ecpat-france", "ecpat-belgique", "ecpat-luxembourg"]),
    ("trn-2018-online-investigations", "Online child sexual exploitation: trends and reporting", "2018-10-23",
     ["ecpat-germany", "ecpat-austria", "ecpat-germany"]),
    ("trn-2019-the-code-auditing", "Auditing The Code in hotels", "2019-02-12", ["ecpat-thailand", "ecpat-taiwan"]),
    ("trn-2019-upr-advocacy", "Preparing UPR and CRC submissions", "2019-05-21",
     ["ecpat-france", "ecpat-italia", "ecpat-sweden"]),
    ("trn-2019-survivor-engagement", "Ethical engagement of survivors in programmes", "2019-09-10",
     ["ecpat-philippines", "ecpat-guatemala"]),
    ("trn-2020-webinar-covid-online", "Webinar: online risks for children during lockdowns", "2020-04-28",
     ["ecpat-france", "ecpat-belgique", "ecpat-uk", "ecpat-netherlands"]),
    ("trn-2020-data-protection", "Safeguarding and data protection in case management", "2020-09-15",
     ["ecpat-luxembourg"]),
    ("trn-2020-research-methods", "Research methods for national studies", "2020-11-03",
     ["ecpat-taiwan", "ecpat-japan", "ecpat-philippines"]),
    ("trn-2021-access-to-justice", "Strategic litigation and access to justice", "2021-03-16",
     ["ecpat-france", "ecpat-usa"]),
    ("trn-2021-travel-tourism-recovery", "Travel and tourism after COVID-19: protecting children", "2021-06-08",
     ["ecpat-thailand", "ecpat-guatemala", "ecpat-italia"]),
    ("trn-2021-child-participation", "Child participation in advocacy", "2021-10-19",
     ["ecpat-belgique", "ecpat-uk"]),
]
MANIFESTATIONS = ["prostitution", "travel_tourism", "online", "trafficking"]


def programme():
    for n, country in enumerate(PARTICIPATION_COUNTRIES):
        day = date(2018, 2, 1) + timedelta(days=rng.randrange(1420))
        pid = f"part-{day.year}-{n + 1:03d}"
        data = {"participation_id": pid, "country": country, "activity": "advocacy" if n % 3 == 0 else "programme",
                "date": day.isoformat()}
        time = office_time(day)
        emit(PROGRAMME, T_PARTICIPATION, time, data, subject=f"survivor_participation/{pid}")
        if country == "NP":
            # Recorded under the wrong programme: withdrawn.
            withdraw(PROGRAMME, time + timedelta(days=11), "survivor_participation", {"participation_id": pid},
                     "entered under the wrong programme")

    for n in range(30):
        organisation, kind = OUTREACH_ORGS[n % len(OUTREACH_ORGS)]
        day = date(2018, 1, 15) + timedelta(days=rng.randrange(1430))
        oid = f"outreach-{day.year}-{n + 1:03d}"
        data = {"outreach_id": oid, "organisation": organisation, "organisation_kind": kind,
                "channel": rng.choice(["social_media", "participatory_media", "traditional_media"]),
                "regular": rng.random() < 0.7, "date": day.isoformat()}
        emit(PROGRAMME, T_OUTREACH, office_time(day), data, subject=f"child_outreach/{oid}")

    for tid, title, held_on, beneficiaries in TRAININGS:
        data = {"training_id": tid, "title": title, "held_on": held_on, "beneficiaries": beneficiaries}
        time = office_time(iso_day(held_on))
        emit(PROGRAMME, T_TRAINING, time, data, subject=f"capacity_training/{tid}")
        if tid == "trn-2020-data-protection":
            # Withdrawn while the attendance list was checked, then recorded again with it completed.
            withdraw(PROGRAMME, time + timedelta(days=2), "capacity_training", {"training_id": tid},
                     "attendance list being checked")
            emit(PROGRAMME, T_TRAINING, time + timedelta(days=12),
                 dict(data, beneficiaries=["ecpat-luxembourg", "ecpat-switzerland"]),
                 subject=f"capacity_training/{tid}")

    assessed = ["ecpat-france", "ecpat-belgique", "ecpat-luxembourg", "ecpat-uk", "ecpat-germany",
                "ecpat-philippines", "ecpat-taiwan", "ecpat-thailand"]
    for year in range(2018, 2022):
        for member in assessed:
            if rng.random() < 0.25:
                continue
            count = rng.choice([1, 2, 2, 3, 3, 4])
            manifestations = rng.sample(MANIFESTATIONS, count)
            if member == "ecpat-germany" and year == 2019:
                manifestations = ["online", "online", "trafficking"]  # two distinct: does not count
            if member == "ecpat-luxembourg" and year == 2020:
                manifestations = ["online", "prostitution"]
            data = {"member": member, "year": year, "manifestations": manifestations}
            time = local("cet", year, 12, rng.randint(1, 18), rng.randint(9, 17), rng.randint(0, 59))
            emit(PROGRAMME, T_EXPERTISE, time, data, subject=f"member_expertise/{member}/{year}")
            if member == "ecpat-luxembourg" and year == 2020:
                # The annual review found a third manifestation.
                emit(PROGRAMME, T_EXPERTISE, local("cet", 2021, 2, 8, 10, 5),
                     dict(data, manifestations=["online", "prostitution", "travel_tourism"]),
                     subject=f"member_expertise/{member}/{year}")
    # An assessment the member did not validate: withdrawn. Pick one that alone qualifies its member for ND3.
    qualifying = [(e["data"]["member"], e["data"]["year"]) for e in events
                  if e["type"] == T_EXPERTISE and len(set(e["data"]["manifestations"])) >= 3]
    member_code, year = next(q for q in qualifying if [m for m, _ in qualifying].count(q[0]) == 1)
    withdraw(PROGRAMME, local("cet", year + 1, 3, 4, 9, 30), "member_expertise", {"member": member_code, "year": year},
             "assessment not validated by the member")


# --- The producers' rules (docs/events.md): every event must pass ---

ISO_ALPHA2 = set("""
AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY BZ
CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR
GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO
JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR
MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO
RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV
TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW XK
""".split())
assert len(ISO_ALPHA2) == 250

MEMBER_RE = re.compile(r"[a-z0-9][a-z0-9-]{1,63}")
PLATFORM_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")
RFC3339_RE = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})")
CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f]")
METRICS = ["likes", "shares", "clicks", "stories", "comments", "views", "impressions"]
THEMES = MANIFESTATIONS + ["access_to_justice", "child_participation", "recovery_reintegration", "legislation",
                           "other"]
GLOBAL_MECHANISMS = ["upr", "crc", "un_special_procedures", "un_other"]
REGIONAL_MECHANISMS = ["acerwc", "achpr", "council_of_europe", "european_union", "iachr", "regional_other"]
RECORD_KEYS = {
    "social_post": ("platform", "post_id"), "publication": ("publication_id",),
    "un_submission": ("submission_id",), "un_recommendation": ("recommendation_id",),
    "media_story": ("story_id",), "advocacy_initiative": ("initiative_id",),
    "survivor_participation": ("participation_id",), "child_outreach": ("outreach_id",),
    "capacity_training": ("training_id",), "member_expertise": ("member", "year"),
}
TYPE_RECORD = {
    T_SOCIAL: "social_post", T_PUBLICATION: "publication", T_SUBMISSION: "un_submission",
    T_RECOMMENDATION: "un_recommendation", T_STORY: "media_story", T_INITIATIVE: "advocacy_initiative",
    T_PARTICIPATION: "survivor_participation", T_OUTREACH: "child_outreach", T_TRAINING: "capacity_training",
    T_EXPERTISE: "member_expertise",
}


class Invalid(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Invalid(what)


def identifier(d, f):
    v = d.get(f)
    check(isinstance(v, str) and 1 <= len(v) <= 256 and not CONTROL_RE.search(v), f)


def text(d, f, optional=False):
    if optional and f not in d:
        return
    check(isinstance(d.get(f), str) and len(d[f]) <= 2000, f)


def member(v, f):
    check(isinstance(v, str) and MEMBER_RE.fullmatch(v), f)


def country(v, f):
    check(isinstance(v, str) and v.upper() in ISO_ALPHA2, f)


def day(d, f):
    v = d.get(f)
    check(isinstance(v, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", v), f)
    try:
        parsed = date.fromisoformat(v)
    except ValueError:
        raise Invalid(f)
    check(date(1990, 1, 1) <= parsed <= date(2100, 12, 31), f)


def timestamp(v, f):
    check(isinstance(v, str) and RFC3339_RE.fullmatch(v), f)
    return datetime.fromisoformat(v)


def boolean(d, f):
    check(isinstance(d.get(f), bool), f)


def enum(d, f, values):
    check(d.get(f) in values, f)


def listed(d, f, each, optional=False, non_empty=False):
    if optional and f not in d:
        return
    v = d.get(f)
    check(isinstance(v, list) and (v or not non_empty), f)
    for x in v:
        each(x, f)


def validate(e):
    check(set(e) >= {"specversion", "id", "source", "type", "time", "data"}, "envelope")
    check(e["specversion"] == "1.0", "specversion")
    check(isinstance(e["id"], str) and 1 <= len(e["id"]) <= 256 and not CONTROL_RE.search(e["id"]), "id")
    check(isinstance(e["source"], str) and 1 <= len(e["source"]) <= 1024 and not CONTROL_RE.search(e["source"]),
          "source")
    timestamp(e["time"], "time")
    check(e.get("datacontenttype", "application/json") == "application/json", "datacontenttype")
    d = e["data"]
    check(isinstance(d, dict), "data")
    t = e["type"]
    if t == T_SOCIAL:
        check(isinstance(d.get("platform"), str) and PLATFORM_RE.fullmatch(d["platform"]), "platform")
        identifier(d, "post_id")
        member(d.get("member"), "member")
        published = timestamp(d.get("published_at"), "published_at").astimezone(timezone.utc)
        check(datetime(1990, 1, 1, tzinfo=timezone.utc) <= published < datetime(2101, 1, 1, tzinfo=timezone.utc),
              "published_at")
        if "publication_id" in d:
            identifier(d, "publication_id")
        text(d, "url", optional=True)
        m = d.get("metrics")
        check(isinstance(m, dict) and any(k in m for k in METRICS), "metrics")
        for k, v in m.items():
            check(k in METRICS and type(v) is int and 0 <= v <= 10**12, f"metrics.{k}")
    elif t == T_PUBLICATION:
        identifier(d, "publication_id")
        text(d, "title")
        enum(d, "scope", ["global", "thematic", "regional", "national"])
        listed(d, "countries", country, optional=d["scope"] != "national", non_empty=d["scope"] == "national")
        listed(d, "themes", lambda x, f: check(x in THEMES, f), optional=True)
        boolean(d, "contributed")
        day(d, "published_on")
        text(d, "doi", optional=True)
        text(d, "url", optional=True)
    elif t == T_SUBMISSION:
        identifier(d, "submission_id")
        enum(d, "mechanism", GLOBAL_MECHANISMS + REGIONAL_MECHANISMS)
        country(d.get("country"), "country")
        day(d, "submitted_on")
        text(d, "cycle", optional=True)
        boolean(d, "in_alliance")
        listed(d, "members", member, non_empty=True)
        text(d, "document", optional=True)
    elif t == T_RECOMMENDATION:
        identifier(d, "recommendation_id")
        enum(d, "mechanism", ["upr", "crc"])
        country(d.get("country"), "country")
        boolean(d, "taken_up")
        text(d, "document", optional=True)
        if "paragraph" in d:
            p = d["paragraph"]
            check((type(p) is int and p >= 0) or (isinstance(p, str) and 1 <= len(p) <= 256
                                                  and not CONTROL_RE.search(p)), "paragraph")
        day(d, "decided_on")
    elif t == T_STORY:
        identifier(d, "story_id")
        member(d.get("member"), "member")
        text(d, "outlet")
        boolean(d, "global_advocacy")
        day(d, "published_on")
        text(d, "url", optional=True)
    elif t == T_INITIATIVE:
        identifier(d, "initiative_id")
        text(d, "title")
        enum(d, "private_sector_engagement", ["none", "limited", "significant"])
        listed(d, "partners", lambda x, f: check(isinstance(x, str) and len(x) <= 2000, f), optional=True)
        day(d, "started_on")
    elif t == T_PARTICIPATION:
        identifier(d, "participation_id")
        country(d.get("country"), "country")
        enum(d, "activity", ["programme", "advocacy"])
        day(d, "date")
    elif t == T_OUTREACH:
        identifier(d, "outreach_id")
        member(d.get("organisation"), "organisation")
        enum(d, "organisation_kind", ["member", "partner"])
        enum(d, "channel", ["social_media", "participatory_media", "traditional_media"])
        boolean(d, "regular")
        day(d, "date")
    elif t == T_TRAINING:
        identifier(d, "training_id")
        text(d, "title")
        day(d, "held_on")
        listed(d, "beneficiaries", member, non_empty=True)
    elif t == T_EXPERTISE:
        member(d.get("member"), "member")
        check(type(d.get("year")) is int and 1990 <= d["year"] <= 2100, "year")
        listed(d, "manifestations", lambda x, f: check(x in MANIFESTATIONS, f))
    elif t == T_WITHDRAWN:
        enum(d, "record_type", list(RECORD_KEYS))
        key = d.get("key")
        check(isinstance(key, dict) and set(key) == set(RECORD_KEYS[d["record_type"]]), "key")
        for f, v in key.items():
            if f == "member":
                member(v, "key.member")
            elif f == "year":
                check(type(v) is int and 1990 <= v <= 2100, "key.year")
            elif f == "platform":
                check(isinstance(v, str) and PLATFORM_RE.fullmatch(v), "key.platform")
            else:
                identifier(key, f)
    else:
        raise Invalid("type")


# --- Expected indicators (section 4), recomputed from the file alone ---

def record_key(record_type, data):
    return tuple(data[f] for f in RECORD_KEYS[record_type])


def utc(text):
    return datetime.fromisoformat(text).astimezone(timezone.utc)


def current_records(lines):
    """{record_type: [data of each current record]}; social posts as {(platform, post_id): {metric: data}}."""
    seen, latest = set(), {}
    for e in lines:
        if (e["source"], e["id"]) in seen:
            continue  # duplicate: changes nothing
        seen.add((e["source"], e["id"]))
        version = (utc(e["time"]), e["source"], e["id"])
        d = e["data"]
        if e["type"] == T_WITHDRAWN:
            record_type, key = d["record_type"], record_key(d["record_type"], d["key"])
            targets = [("social_post", key, m) for m in METRICS] if record_type == "social_post" \
                else [(record_type, key)]
            for target in targets:
                if target not in latest or version > latest[target][0]:
                    latest[target] = (version, None)
            continue
        record_type = TYPE_RECORD[e["type"]]
        key = record_key(record_type, d)
        targets = [(record_type, key, m) for m in d["metrics"]] if record_type == "social_post" \
            else [(record_type, key)]
        for target in targets:
            if target not in latest or version > latest[target][0]:
                latest[target] = (version, d)
    current = {r: [] for r in RECORD_KEYS}
    posts = {}
    for target, (version, d) in sorted(latest.items(), key=lambda kv: repr(kv[0])):
        if d is None:
            continue
        if target[0] == "social_post":
            posts.setdefault(target[1], {})[target[2]] = d
        else:
            current[target[0]].append(d)
    current["social_post"] = posts
    return current


def expected_totals(lines):
    c = current_records(lines)
    pubs, posts = c["publication"], c["social_post"]
    return {
        "KE1": sum(1 for p in pubs if p["scope"] in ("global", "thematic") and p["contributed"]),
        "KE2": sum(1 for p in pubs if p["scope"] == "national"),
        "KE3": sum(series[m]["metrics"][m] for series in posts.values() for m in series
                   if m in ("likes", "shares", "clicks", "stories") and "publication_id" in series[m]),
        "AP1": sum(1 for r in c["un_recommendation"] if r["taken_up"]),
        "AP2": len({s["member"] for s in c["media_story"] if s["global_advocacy"]}),
        "AP3": len({d["member"] for series in posts.values() for d in series.values()}),
        "AP4": sum(1 for i in c["advocacy_initiative"] if i["private_sector_engagement"] == "significant"),
        "CV1": len({p["country"].upper() for p in c["survivor_participation"]}),
        "CV2": len({o["organisation"] for o in c["child_outreach"] if o["regular"]}),
        "CV3": sum(1 for p in pubs if "access_to_justice" in p.get("themes", [])),
        "ND1": len({s["country"].upper() for s in c["un_submission"]}),
        "ND2": len({m for t in c["capacity_training"] for m in t["beneficiaries"]}),
        "ND3": len({a["member"] for a in c["member_expertise"] if len(set(a["manifestations"])) >= 3}),
    }


def main():
    posts = social_media()
    recorded = research()
    advocacy()
    programme()
    research_corrections(recorded)
    social_corrections(posts)
    # Everything in the order it was recorded, then two late re-imports of older versions.
    events.sort(key=lambda e: (utc(e["time"]), e["source"], e["id"]))
    social_backfill(posts)
    research_backfill(recorded)

    for n, e in enumerate(events, 1):
        try:
            validate(e)
        except Invalid as err:
            sys.exit(f"event {n} ({e['type']}) is invalid: {err}")
    OUT.write_text("".join(json.dumps(e, ensure_ascii=False) + "\n" for e in events), encoding="utf-8")

    lines = [json.loads(line) for line in OUT.read_text(encoding="utf-8").splitlines()]
    counts = {}
    for e in lines:
        counts[e["type"]] = counts.get(e["type"], 0) + 1
    print(f"wrote {len(lines)} events to {OUT.name}", file=sys.stderr)
    for t in sorted(counts):
        print(f"  {counts[t]:4d}  {t}", file=sys.stderr)
    print('expected totals, period "all":', file=sys.stderr)
    for code, value in expected_totals(lines).items():
        print(f"  {code}  {value}", file=sys.stderr)


if __name__ == "__main__":
    main()
