"""Writes a copy of the template with other parameter defaults (NAME=VALUE ...), so checkov, which
evaluates conditions with the defaults, scans the optional resources too.

    template-variant.py SRC DST NAME=VALUE [NAME=VALUE ...]
"""
import re
import sys

src, dst, *pairs = sys.argv[1:]
t = open(src).read()
for pair in pairs:
    name, value = pair.split("=", 1)
    pat = re.compile(r"(\n  %s:\n(?:    .*\n)*?    Default: )(.*)\n" % re.escape(name))
    assert pat.search(t), name
    t = pat.sub(lambda m: m.group(1) + ('"%s"' % value) + "\n", t, count=1)
open(dst, "w").write(t)
