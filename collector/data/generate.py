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
hand below with local codes.

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
# Validity dates are left empty on purpose (not sourced).
DEPARTMENTS = [
    ("67.S.VPUB", "Văn phòng Ủy ban nhân dân tỉnh", ""),
    ("67.S.NV", "Sở Nội vụ", ""),
    ("67.S.TP", "Sở Tư pháp", ""),
    ("67.S.KHDT", "Sở Kế hoạch và Đầu tư",
     "Merged into Sở Tài chính in the 2025 restructuring of provincial departments (date not recorded)"),
    ("67.S.TC", "Sở Tài chính", ""),
    ("67.S.CT", "Sở Công Thương", ""),
    ("67.S.NNPTNT", "Sở Nông nghiệp và Phát triển nông thôn",
     "Merged with Sở Tài nguyên và Môi trường into Sở Nông nghiệp và Môi trường in the 2025 restructuring (date not recorded)"),
    ("67.S.GTVT", "Sở Giao thông vận tải",
     "Merged into Sở Xây dựng in the 2025 restructuring of provincial departments (date not recorded)"),
    ("67.S.XD", "Sở Xây dựng", ""),
    ("67.S.TNMT", "Sở Tài nguyên và Môi trường",
     "Merged with Sở Nông nghiệp và Phát triển nông thôn into Sở Nông nghiệp và Môi trường in the 2025 restructuring (date not recorded)"),
    ("67.S.TTTT", "Sở Thông tin và Truyền thông",
     "Provincial IT authority, runs the central collector; merged into Sở Khoa học và Công nghệ in the 2025 restructuring (date not recorded)"),
    ("67.S.LDTBXH", "Sở Lao động - Thương binh và Xã hội",
     "Merged into Sở Nội vụ in the 2025 restructuring, some duties moved to other departments (date not recorded)"),
    ("67.S.VHTTDL", "Sở Văn hóa, Thể thao và Du lịch", ""),
    ("67.S.KHCN", "Sở Khoa học và Công nghệ", ""),
    ("67.S.GDDT", "Sở Giáo dục và Đào tạo", ""),
    ("67.S.YT", "Sở Y tế", ""),
    ("67.S.TTR", "Thanh tra tỉnh", ""),
    ("67.S.BDT", "Ban Dân tộc", ""),
    ("67.S.BQLKCN", "Ban Quản lý các khu công nghiệp",
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

    rows = []
    rows.append([OLD_PROVINCE, "Tỉnh Đắk Nông", "province", "", "2004-01-01", MERGER_TO, NEW_PROVINCE,
                 "Established by Nghị quyết 22/2003/QH11; merged into Tỉnh Lâm Đồng on 2025-07-01"])
    rows.append([NEW_PROVINCE, "Tỉnh Lâm Đồng", "province", "", MERGER_FROM, "", "",
                 "Province formed on 2025-07-01 from Lâm Đồng, Đắk Nông and Bình Thuận; only its communes "
                 "in the former Đắk Nông area are listed; code 68 also denoted the pre-merger Lâm Đồng, not listed"])
    for code, name, note in DEPARTMENTS:
        rows.append([code, name, "department", OLD_PROVINCE, "", "", "",
                     ("Local code. " + note).strip()])

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

    for code in sorted(new_units):
        u = new_units[code]
        note = f"Official GSO code {code} (2025 list); formed from {', '.join(sorted(u['from']))}"
        if u.get("outside"):
            note += f" and units outside Đắk Nông ({', '.join(u['outside'])})"
        rows.append([new_code(code), u["name"], "commune", NEW_PROVINCE, MERGER_FROM, "", "", note])

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
