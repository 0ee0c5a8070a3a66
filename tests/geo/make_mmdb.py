"""Writes a small GeoLite2-City-layout .mmdb for the tests: a few networks placed in
cities far apart. Usage: make_mmdb.py OUT.mmdb"""

import sys

from mmdb_writer import MMDBWriter
from netaddr import IPSet

CITIES = {
    # network: (country, latitude, longitude)
    "81.2.69.0/24": ("GB", 51.5074, -0.1278),     # London
    "81.2.70.0/24": ("GB", 53.4808, -2.2426),     # Manchester
    "175.16.199.0/24": ("AU", -33.8688, 151.2093),  # Sydney
    "89.160.20.0/24": ("SE", 59.3293, 18.0686),   # Stockholm
}

writer = MMDBWriter(ip_version=4, database_type="GeoLite2-City", languages=["en"], description="stepgate tests")
for net, (country, lat, lon) in CITIES.items():
    writer.insert_network(
        IPSet([net]),
        {"country": {"iso_code": country}, "location": {"latitude": lat, "longitude": lon}},
    )
writer.to_db_file(sys.argv[1])
