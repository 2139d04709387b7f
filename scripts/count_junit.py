#!/usr/bin/env python3
"""Counts test cases in meson's JUnit log: prints 'N passed, N failed, N skipped'.

Usage: count_junit.py BUILD_DIR/meson-logs/testlog.junit.xml
"""
import sys
import xml.etree.ElementTree as ET


def main() -> int:
    passed = failed = skipped = 0
    try:
        root = ET.parse(sys.argv[1]).getroot()
    except (OSError, ET.ParseError, IndexError) as error:
        print(f"cannot read test log: {error}")
        print("0 passed, 1 failed")
        return 0
    for case in root.iter("testcase"):
        if case.find("failure") is not None or case.find("error") is not None:
            failed += 1
        elif case.find("skipped") is not None:
            skipped += 1
        else:
            passed += 1
    print(f"{passed} passed, {failed} failed, {skipped} skipped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
