#!/usr/bin/env python3
"""One-off generator for dak-nong-units.csv (see README.md beside this file).

Reproduce with:

    pip install vietnamadminunits==1.0.4 vietnam-provinces==0.6.0
    python3 generate.py

vietnamadminunits 1.0.4 is the source of every administrative unit: the
pre-2025 tree (63-province dataset), the post-2025 communes (34-province
dataset) and the old -> new commune mapping of 1 July 2025.
vietnam-provinces 0.6.0 (GSO export of 2025-01-04) is only used to cross-check
codes and to record, in the note column, where GSO's own spelling differs.
The province-level departments have no statistical code; they are listed by
hand below with local codes, with their 2025 mergers and successors.
Rows come in two blocks: today's hierarchy (province 68, its departments and
communes) first, then the history of the former province 67.

The script reads only the installed packages and writes the CSV next to
itself. It needs no network.
"""

import csv
import io
import json
import sqlite3
import sys
from pathlib import Path

import vietnam_provinces
import vietnamadminunits
from vietnamadminunits import convert_address

HERE = Path(__file__).resolve().parent
OUT = HERE / "dak-nong-units.csv"

HEADER = ["code", "name", "kind", "parent_code", "valid_from", "valid_to",
          "successor_codes", "note"]

OLD_PROVINCE = "67"          # Tỉnh Đắk Nông
NEW_PROVINCE = "68"          # Tỉnh Lâm Đồng after the 2025 merger
MERGER_FROM = "2025-07-01"   # new units and the two-level government start
MERGER_TO = "2025-06-30"     # last day of the old units

# Expected district-level units (from the project brief); the package must agree.
EXPECTED_DISTRICTS = ["660", "661", "662", "663", "664", "665", "666", "667"]

# Province-level agencies of Đắk Nông (sở, ban, ngành) under QĐ 02/2017/QĐ-UBND.
# They have no statistical code: these are LOCAL codes, to be replaced by the
# official electronic identification codes (QĐ 20/2020/QĐ-TTg).
# Each row: (code, name, valid_from, valid_to, successor codes, note).
# No agency of Đắk Nông outlived the province (last day 2025-06-30); the ones
# merged in the national restructuring of provincial departments end the day
# before it took effect. Only the Sở TT&TT -> Sở KH&CN date (2025-03-01) is
# sourced; the other early-2025 mergers are dated 2025-03-01 as well and say so.
MERGER_2025_03 = "2025-03-01"
LAST_DAY_BEFORE_2025_03 = "2025-02-28"
ASSUMED = " (date 2025-03-01 assumed, as for Sở Thông tin và Truyền thông; not sourced for this department)"


def new_dept(code):
    """Local code of a department of the post-2025 Tỉnh Lâm Đồng."""
    return f"{NEW_PROVINCE}.S.{code}"


def continued(code, name, note=""):
    """A Đắk Nông agency that lasted until the province ended and continues in
    the same-named agency of the new Tỉnh Lâm Đồng."""
    return (f"{OLD_PROVINCE}.S.{code}", name, "", MERGER_TO, new_dept(code),
            note or f"Continued by the {name} of Tỉnh Lâm Đồng from {MERGER_FROM}")


def merged(code, name, into, note):
    """A Đắk Nông department merged into another one on 2025-03-01."""
    return (f"{OLD_PROVINCE}.S.{code}", name, "", LAST_DAY_BEFORE_2025_03,
            f"{OLD_PROVINCE}.S.{into}", note)


DEPARTMENTS = [
    continued("VPUB", "Văn phòng Ủy ban nhân dân tỉnh"),
    continued("NV", "Sở Nội vụ",
              "Took over Sở Lao động - Thương binh và Xã hội on 2025-03-01; continued by the Sở Nội vụ "
              "of Tỉnh Lâm Đồng from 2025-07-01"),
    continued("TP", "Sở Tư pháp"),
    merged("KHDT", "Sở Kế hoạch và Đầu tư", "TC", "Merged into Sở Tài chính on 2025-03-01" + ASSUMED),
    continued("TC", "Sở Tài chính",
              "Took over Sở Kế hoạch và Đầu tư on 2025-03-01; continued by the Sở Tài chính of Tỉnh Lâm Đồng "
              "from 2025-07-01"),
    continued("CT", "Sở Công Thương"),
    merged("NNPTNT", "Sở Nông nghiệp và Phát triển nông thôn", "NNMT",
           "Merged with Sở Tài nguyên và Môi trường into Sở Nông nghiệp và Môi trường on 2025-03-01" + ASSUMED),
    merged("GTVT", "Sở Giao thông vận tải", "XD", "Merged into Sở Xây dựng on 2025-03-01" + ASSUMED),
    continued("XD", "Sở Xây dựng",
              "Took over Sở Giao thông vận tải on 2025-03-01; continued by the Sở Xây dựng of Tỉnh Lâm Đồng "
              "from 2025-07-01"),
    merged("TNMT", "Sở Tài nguyên và Môi trường", "NNMT",
           "Merged with Sở Nông nghiệp và Phát triển nông thôn into Sở Nông nghiệp và Môi trường on 2025-03-01"
           + ASSUMED),
    (f"{OLD_PROVINCE}.S.NNMT", "Sở Nông nghiệp và Môi trường", MERGER_2025_03, MERGER_TO, new_dept("NNMT"),
     "Formed on 2025-03-01 from Sở Nông nghiệp và Phát triển nông thôn and Sở Tài nguyên và Môi trường"
     + ASSUMED + "; continued by the Sở Nông nghiệp và Môi trường of Tỉnh Lâm Đồng from 2025-07-01"),
    merged("TTTT", "Sở Thông tin và Truyền thông", "KHCN",
           "Provincial IT authority until 2025-02-28, ran the central collector; merged into Sở Khoa học và "
           "Công nghệ on 2025-03-01"),
    merged("LDTBXH", "Sở Lao động - Thương binh và Xã hội", "NV",
           "Merged into Sở Nội vụ on 2025-03-01, some duties moved to other departments" + ASSUMED),
    continued("VHTTDL", "Sở Văn hóa, Thể thao và Du lịch"),
    continued("KHCN", "Sở Khoa học và Công nghệ",
              "Took over Sở Thông tin và Truyền thông on 2025-03-01 and with it the provincial IT authority; "
              "continued by the Sở Khoa học và Công nghệ of Tỉnh Lâm Đồng from 2025-07-01"),
    continued("GDDT", "Sở Giáo dục và Đào tạo"),
    continued("YT", "Sở Y tế"),
    continued("TTR", "Thanh tra tỉnh"),
    (f"{OLD_PROVINCE}.S.BDT", "Ban Dân tộc", "", MERGER_TO, new_dept("DTTG"),
     "Its duties passed to a Sở Dân tộc và Tôn giáo in 2025; when Đắk Nông reorganised it is not "
     "recorded here, so it is shown until 2025-06-30 with the Sở Dân tộc và Tôn giáo of Tỉnh Lâm Đồng "
     "as successor"),
    continued("BQLKCN", "Ban Quản lý các khu công nghiệp",
              "Agency under UBND tỉnh, not a specialised department (cơ quan chuyên môn); continued by the "
              "Ban Quản lý các khu công nghiệp of Tỉnh Lâm Đồng from 2025-07-01"),
]

# Province-level agencies of the post-2025 Tỉnh Lâm Đồng that took over those of
# Đắk Nông, valid from the merger. Local codes like the ones above. Only the
# successors of former Đắk Nông agencies are listed, not every agency of the
# new province.
NEW_DEPARTMENTS = [
    ("VPUB", "Văn phòng Ủy ban nhân dân tỉnh", ""),
    ("NV", "Sở Nội vụ", ""),
    ("TP", "Sở Tư pháp", ""),
    ("TC", "Sở Tài chính", ""),
    ("CT", "Sở Công Thương", ""),
    ("NNMT", "Sở Nông nghiệp và Môi trường", ""),
    ("XD", "Sở Xây dựng", ""),
    ("KHCN", "Sở Khoa học và Công nghệ",
     "Provincial IT authority (cơ quan chuyên môn về công nghệ thông tin), runs the central collector"),
    ("VHTTDL", "Sở Văn hóa, Thể thao và Du lịch", ""),
    ("GDDT", "Sở Giáo dục và Đào tạo", ""),
    ("YT", "Sở Y tế", ""),
    ("DTTG", "Sở Dân tộc và Tôn giáo", "Successor of the Ban Dân tộc of the former Đắk Nông"),
    ("TTR", "Thanh tra tỉnh", ""),
    ("BQLKCN", "Ban Quản lý các khu công nghiệp",
     "Agency under UBND tỉnh, not a specialised department (cơ quan chuyên môn)"),
]


def new_code(gso_code):
    """Code used in this file for a post-2025 commune.

    GSO re-used the codes of former communes for the new ones (for example
    24611 was Phường Nghĩa Đức and is now Phường Bắc Gia Nghĩa), so the bare
    5-digit code would clash with the pre-2025 row. Post-2025 communes are
    therefore written as "<new province code>.<official 5-digit code>".
    """
    return f"{NEW_PROVINCE}.{gso_code}"


def fail(msg):
    sys.exit(f"generate.py: {msg}")


def vau_db():
    return sqlite3.connect(Path(vietnamadminunits.__file__).parent / "data" / "dataset.db")


def load_old_tree(db):
    rows = db.execute(
        "SELECT DISTINCT province, provinceKey, district, districtType, districtCode, districtKey, "
        "ward, wardType, wardCode, wardKey FROM admin_units_legacy WHERE provinceCode = ? "
        "ORDER BY districtCode, wardCode", (OLD_PROVINCE,)).fetchall()
    if not rows:
        fail("province 67 not found in admin_units_legacy")
    province_names = {r[0] for r in rows}
    if province_names != {"Tỉnh Đắk Nông"}:
        fail(f"unexpected province name(s) {province_names}")
    districts = {}   # code -> dict
    communes = []    # dicts
    for (_pname, pkey, dname, dtype, dcode, dkey, wname, wtype, wcode, wkey) in rows:
        districts.setdefault(dcode, {"code": dcode, "name": dname, "type": dtype, "key": dkey})
        if districts[dcode]["name"] != dname:
            fail(f"district {dcode} has two names")
        communes.append({"code": wcode, "name": wname, "type": wtype, "district": dcode,
                         "map_key": f"{pkey}_{dkey}_{wkey}"})
    if sorted(districts) != EXPECTED_DISTRICTS:
        fail(f"districts of 67 are {sorted(districts)}, expected {EXPECTED_DISTRICTS}")
    codes = [c["code"] for c in communes]
    if len(codes) != len(set(codes)) or not all(len(c) == 5 and c.isdigit() for c in codes):
        fail("commune codes of 67 are not unique 5-digit codes")
    return districts, communes


def load_new_communes(db, old_communes):
    """Post-2025 communes of province 68 covering the former Đắk Nông area, and
    the old commune code -> new commune GSO code mapping."""
    (pname,) = db.execute("SELECT DISTINCT province FROM admin_units WHERE provinceCode = ?",
                          (NEW_PROVINCE,)).fetchone()
    if pname != "Tỉnh Lâm Đồng":
        fail(f"province 68 is {pname!r}")
    conv = json.loads((Path(vietnamadminunits.__file__).parent / "data" /
                       "converter_2025.json").read_text(encoding="utf-8"))
    new_pkey = next(k for k, v in conv["DICT_PROVINCE"].items() if "tinhdaknong" in v)
    if new_pkey != "tinhlamdong":
        fail(f"Đắk Nông maps to {new_pkey}")
    whole = conv["DICT_PROVINCE_WARD_NO_DIVIDED"][new_pkey]
    divided = conv["DICT_PROVINCE_WARD_DIVIDED"].get(new_pkey, {})
    by_old_key = {}
    for new_key, old_keys in whole.items():
        for ok in old_keys:
            by_old_key.setdefault(ok, []).append(new_key)
    new_units = {}   # GSO code -> dict
    mapping = {}     # old code -> GSO code of the new commune
    for c in old_communes:
        if c["map_key"] in divided:
            fail(f"{c['code']} {c['name']} was split between new communes; not handled")
        targets = by_old_key.get(c["map_key"], [])
        if len(targets) != 1:
            fail(f"{c['code']} {c['name']} maps to {targets}")
        row = db.execute("SELECT wardCode, ward, wardType FROM admin_units "
                         "WHERE provinceCode = ? AND wardKey = ?",
                         (NEW_PROVINCE, targets[0])).fetchall()
        if len(row) != 1:
            fail(f"new commune {targets[0]} found {len(row)} times")
        code, name, wtype = row[0]
        new_units.setdefault(code, {"code": code, "name": name, "type": wtype, "from": []})
        new_units[code]["from"].append(c["code"])
        mapping[c["code"]] = code
        # Cross-check with the package's public converter (no street: no geocoding).
        d_name = c["district_name"]
        res = convert_address(f"{c['name']}, {d_name}, Tỉnh Đắk Nông")
        old = res.OldAdminUnit
        if (old.ward_code, old.district_code) != (c["code"], c["district"]) \
                or res.ward_code != code or res.province != "Tỉnh Lâm Đồng":
            fail(f"convert_address disagrees for {c['code']}: {res.ward}, {res.province}")
    # New communes must not take in units from outside the former Đắk Nông.
    for code, u in new_units.items():
        new_key = db.execute("SELECT wardKey FROM admin_units WHERE provinceCode = ? AND wardCode = ?",
                             (NEW_PROVINCE, code)).fetchone()[0]
        outside = [k for k in whole[new_key] if not k.startswith("tinhdaknong_")]
        if outside:
            u["outside"] = outside
    return new_units, mapping


def gso_spellings():
    """Codes and names as in vietnam-provinces 0.6.0 (GSO export 2025-01-04)."""
    if vietnam_provinces.__version__ != "0.6.0":
        fail(f"need vietnam-provinces==0.6.0, found {vietnam_provinces.__version__}")
    data = json.loads(vietnam_provinces.NESTED_DIVISIONS_JSON_PATH.read_text(encoding="utf-8"))
    prov = next(p for p in data if p["code"] == int(OLD_PROVINCE))
    names = {OLD_PROVINCE: prov["name"]}
    parents = {}
    for d in prov["districts"]:
        names[str(d["code"])] = d["name"]
        parents[str(d["code"])] = OLD_PROVINCE
        for w in d["wards"]:
            names[f"{w['code']:05d}"] = w["name"]
            parents[f"{w['code']:05d}"] = str(d["code"])
    return names, parents


def main():
    db = vau_db()
    districts, communes = load_old_tree(db)
    for c in communes:
        c["district_name"] = districts[c["district"]]["name"]
    new_units, mapping = load_new_communes(db, communes)

    gso_names, gso_parents = gso_spellings()
    ours = {d: OLD_PROVINCE for d in districts} | {c["code"]: c["district"] for c in communes}
    if ours != gso_parents:
        fail("vietnam-provinces 0.6.0 and vietnamadminunits disagree on codes/parents of 67")

    def gso_note(code, name):
        g = gso_names.get(code)
        return "" if g == name else f"GSO list spells it {g}"

    # Today's hierarchy first: the province 68, its departments and communes.
    rows = []
    rows.append([NEW_PROVINCE, "Tỉnh Lâm Đồng", "province", "", MERGER_FROM, "", "",
                 "Province formed on 2025-07-01 from Lâm Đồng, Đắk Nông and Bình Thuận; only its departments "
                 "and its communes in the former Đắk Nông area are listed; code 68 also denoted the pre-merger "
                 "Lâm Đồng, not listed"])
    for code, name, note in NEW_DEPARTMENTS:
        rows.append([new_dept(code), name, "department", NEW_PROVINCE, MERGER_FROM, "", "",
                     f"Local code. {note}".strip()])
    for code in sorted(new_units):
        u = new_units[code]
        note = f"Official GSO code {code} (2025 list); formed from {', '.join(sorted(u['from']))}"
        if u.get("outside"):
            note += f" and units outside Đắk Nông ({', '.join(u['outside'])})"
        rows.append([new_code(code), u["name"], "commune", NEW_PROVINCE, MERGER_FROM, "", "", note])

    # Then the history: the former Tỉnh Đắk Nông, its agencies, districts and communes.
    rows.append([OLD_PROVINCE, "Tỉnh Đắk Nông", "province", "", "2004-01-01", MERGER_TO, NEW_PROVINCE,
                 "Established by Nghị quyết 22/2003/QH11; merged into Tỉnh Lâm Đồng on 2025-07-01"])
    for code, name, valid_from, valid_to, successors, note in DEPARTMENTS:
        rows.append([code, name, "department", OLD_PROVINCE, valid_from, valid_to, successors,
                     f"Local code. {note}".strip()])

    for dcode in sorted(districts):
        d = districts[dcode]
        mine = [c for c in communes if c["district"] == dcode]
        succ = sorted({mapping[c["code"]] for c in mine})
        note = "District level abolished on 2025-07-01; successors are the new communes covering its area"
        g = gso_note(dcode, d["name"])
        rows.append([dcode, d["name"], "district", OLD_PROVINCE, "", MERGER_TO,
                     ";".join(new_code(s) for s in succ), f"{note}; {g}" if g else note])
        for c in mine:
            rows.append([c["code"], c["name"], "commune", dcode, "", MERGER_TO,
                         new_code(mapping[c["code"]]), gso_note(c["code"], c["name"])])

    # Self-check before writing.
    codes = [r[0] for r in rows]
    if len(codes) != len(set(codes)):
        fail("duplicate codes")
    known = set(codes)
    for r in rows:
        if r[3] and r[3] not in known:
            fail(f"{r[0]}: unknown parent {r[3]}")
        for s in filter(None, r[6].split(";")):
            if s not in known:
                fail(f"{r[0]}: unknown successor {s}")
    # Nothing of the old province outlives it, and every unit that ended has
    # successors that start the day after.
    by_code = {r[0]: r for r in rows}
    for r in rows:
        if r[3] == OLD_PROVINCE and not (r[5] and r[5] <= MERGER_TO):
            fail(f"{r[0]}: a unit of {OLD_PROVINCE} must end by {MERGER_TO}")
        if r[5] and not r[6]:
            fail(f"{r[0]}: ends on {r[5]} without a successor")
        for s in filter(None, r[6].split(";")):
            start = by_code[s][4]
            if start and start > r[5]:
                day_after = {MERGER_TO: MERGER_FROM, LAST_DAY_BEFORE_2025_03: MERGER_2025_03}.get(r[5])
                if start != day_after:
                    fail(f"{r[0]}: successor {s} starts {start}, not the day after {r[5]}")

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
    w.writerow(HEADER)
    w.writerows(rows)
    OUT.write_text(buf.getvalue(), encoding="utf-8")
    kinds = {}
    for r in rows:
        kinds[r[2]] = kinds.get(r[2], 0) + 1
    print(f"wrote {OUT.name}: {len(rows)} rows {kinds}")


if __name__ == "__main__":
    main()
