#!/usr/bin/env bash
# tests/chaos/report.lua on the committed sample timeline (tests/chaos/testdata/report/sample,
# written by gen.lua beside it: three proxies, two overlapping faults, a point event, sf_vip_p1 moved
# to p2 and back, a fenced period) and on timelines made here: the page and the SVG are written and
# parse as XML, the page shows every figure in file order (violations green at 0, red otherwise),
# one band per fault with its title, one lane per VIP instance and per node; a missing required file
# fails with exit 1 naming it; absent or header-only optional files still give a page; a 600 s
# timeline (6000 slots, 40 faults) keeps its SVG under 1.5 MB (time and size are printed, the time
# is not judged). No server, no clock: seconds of CPU.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=tests/lib/suite.sh
. "$top/tests/lib/suite.sh"
REPORT=$top/tests/chaos/report.lua
DATA=$top/tests/chaos/testdata/report
GEN=$DATA/gen.lua
SAMPLE=$DATA/sample
work=$(mktemp -d /tmp/sf-report.XXXXXX)
trap 'rm -rf "$work"' EXIT

command -v lua5.4 >/dev/null || fatal "lua5.4 is installed"

# xml_ok FILE: FILE is well-formed XML (xmllint when present, else python3's xml.etree)
# shellcheck disable=SC2317 # called through check
xml_ok() {
	if command -v xmllint >/dev/null; then
		xmllint --noout "$1" 2>"$work/xml.err"
	else
		python3 -c 'import sys, xml.etree.ElementTree as E; E.parse(sys.argv[1])' "$1" 2>"$work/xml.err"
	fi || { sed 's/^/# /' "$work/xml.err" | head -n 5; return 1; }
}
# svg_part PAGE OUT: the page's inline <svg> element (report.lua starts and ends it on lines of its own)
svg_part() { sed -n '/^<svg /,/^<\/svg>$/p' "$1" >"$2"; [[ -s $2 ]]; }
# count PATTERN FILE: the lines of FILE holding the fixed string PATTERN
count() { grep -cF -- "$1" "$2"; }
# rows FILE: "name<TAB>value" of each table row of the figures
rows() { sed -n 's|^<tr[^>]*><th scope="row">\([^<]*\)</th><td>\([^<]*\)</td></tr>$|\1\t\2|p' "$1"; }
# copy_sample DIR: a copy of the sample to change
copy_sample() { rm -rf "$1" && cp -r "$SAMPLE" "$1"; }
ms_now() { echo $(($(date +%s%N) / 1000000)); }

# ---- lint, and the sample is what gen.lua writes -------------------------------------------------
if command -v luacheck >/dev/null; then
	for f in tests/chaos/report.lua tests/chaos/testdata/report/gen.lua; do
		if out=$(cd "$top" && luacheck --no-color --formatter plain "$f" 2>&1); then ok "luacheck $f"
		else not_ok "luacheck $f" && printf '# %s\n' "$out" | head -n 10; fi
	done
else
	diag "luacheck absent (Debian: lua-check): report.lua not linted here"
fi
mkdir -p "$work/regen"
lua5.4 "$GEN" sample "$work/regen" || fatal "gen.lua writes the sample"
check "the committed sample is what gen.lua writes (lua5.4 gen.lua sample $SAMPLE)" diff -r "$SAMPLE" "$work/regen"

# ---- the sample ----------------------------------------------------------------------------------
title='chaos <sample> & "30 s"'
lua5.4 "$REPORT" "$SAMPLE" "$work/sample.html" --title "$title" --svg "$work/sample.svg" 2>"$work/err" ||
	fatal "the sample renders ($(head -n 1 "$work/err"))"
check "the page is written" test -s "$work/sample.html"
check "the standalone SVG is written" test -s "$work/sample.svg"
check "nothing on stderr" test ! -s "$work/err"
svg_part "$work/sample.html" "$work/inline.svg" || fatal "the page holds an <svg> element"
check "the page's SVG is well-formed XML" xml_ok "$work/inline.svg"
check "the standalone SVG is well-formed XML" xml_ok "$work/sample.svg"
check "the whole page is well-formed XML too" xml_ok "$work/sample.html"
check "the standalone SVG declares its namespace" grep -q '^<svg xmlns="http://www.w3.org/2000/svg"' "$work/sample.svg"
check "the page needs nothing from outside (no src=, href=, url(, <script)" \
	test "$(grep -cE 'src=|href=|url\(|<script' "$work/sample.html")" = 0
check "the title is escaped in the page" grep -qF '<h1>chaos &lt;sample&gt; &amp; &quot;30 s&quot;</h1>' "$work/sample.html"
check "the title is escaped in the SVG" grep -qF '<title>chaos &lt;sample&gt; &amp; &quot;30 s&quot;</title>' "$work/sample.svg"

# figures: all of them, in file order, ahead of the picture
awk '$1 == "CHAOS" { print $2 "\t" $3 }' "$SAMPLE/figures.txt" >"$work/want.fig"
rows "$work/sample.html" >"$work/got.fig"
check "every figure is in the table, in file order ($(wc -l <"$work/want.fig") figures)" diff "$work/want.fig" "$work/got.fig"
check "the figures table comes before the picture" \
	test "$(grep -n '<table class="figures">' "$work/sample.html" | cut -d: -f1)" -lt "$(grep -n '^<svg ' "$work/sample.html" | cut -d: -f1)"
n=0
for k in duplicates order_violations fence_violations lease_violations header_mismatches; do
	grep -qF "<tr class=\"good\"><th scope=\"row\">$k</th><td>0</td>" "$work/sample.html" && n=$((n + 1))
done
check "the five violation figures are green at 0 ($n of 5)" test "$n" = 5
check "other figures are not highlighted" grep -qF '<tr><th scope="row">ids_checked</th>' "$work/sample.html"
check "the verdict says no violation" grep -qF '<p class="verdict pass">' "$work/sample.html"

# faults: one band each, titled with kind@target and times; the overlapping two on different rows
n_faults=0
while IFS=$'\t' read -r id kind target start heal _; do
	[[ $id == id ]] && continue
	n_faults=$((n_faults + 1))
	band=$(grep -F "id=\"fault-$id\" class=\"band" "$work/sample.svg")
	check "fault $id ($kind@$target) has one band" test "$(printf '%s\n' "$band" | grep -c .)" = 1
	if [[ $start == "$heal" ]]; then
		want="<title>fault $id: $kind@$target at $start s</title>"
	else
		want="<title>fault $id: $kind@$target from $start s to $heal s ("
	fi
	check "fault $id's band has its title ($want)" grep -qF -- "$want" <<<"$band"
	check "fault $id has a labelled row" grep -qF "id=\"fault-row-$id\"" "$work/sample.svg"
done <"$SAMPLE/faults.tsv"
check "as many bands as faults ($n_faults)" test "$(count 'class="band' "$work/sample.svg")" = "$n_faults"
row_y() { sed -n "s/.*id=\"fault-row-$1\".*<rect x=\"[^\"]*\" y=\"\([^\"]*\)\".*/\1/p" "$work/sample.svg"; }
y1=$(row_y 1) y2=$(row_y 2)
check "the overlapping faults 1 and 2 sit on different rows (y $y1, $y2)" test -n "$y1" -a -n "$y2" -a "$y1" != "$y2"
check "a fault's detail is escaped (fault 2)" grep -qF 'kill -9 &lt;z2&gt; &amp; restart &quot;later&quot;' "$work/sample.svg"
check "the point event is a line (fault 3)" grep -qF '<path id="fault-3" class="band point"' "$work/sample.svg"

# VIPs and leases: one lane per instance, one per node
while read -r inst; do
	check "VIP $inst has one lane" test "$(count "class=\"vip-lane\" id=\"vip-$inst\"" "$work/sample.svg")" = 1
done < <(awk 'NR > 1 { print $1 }' "$SAMPLE/vips.tsv" | sort -u)
check "three VIP lanes" test "$(count 'class="vip-lane"' "$work/sample.svg")" = 3
check "the VIP move is drawn (sf_vip_p1 held by p2, and p1 again)" \
	grep -qF '<title>sf_vip_p1 held by p2 from 9.200 s to 14.800 s (5.600 s)</title>' "$work/sample.svg"
check "the VIP's return is drawn" grep -qF '<title>sf_vip_p1 held by p1 from 14.800 s' "$work/sample.svg"
for node in p1 p2 p3; do
	check "node $node has one lease lane" test "$(count "class=\"lease-lane\" id=\"lease-$node\"" "$work/sample.svg")" = 1
done
check "three lease lanes" test "$(count 'class="lease-lane"' "$work/sample.svg")" = 3
check "p3's reload: both pids are drawn" grep -qF '<title>p3 pid 1302: claiming from 21.100 s' "$work/sample.svg"
check "p3's old pid mints until its stop" grep -qF '<title>p3 pid 1301: minting worker 3 from 0.000 s to 21.200 s' "$work/sample.svg"
check "the fenced period is drawn (a fenced series and p1 waiting)" \
	test "$(grep -cF -e '<title>fenced errors/s</title>' -e '<title>p1 pid 1101: waiting worker 4' "$work/sample.svg")" = 2
check "the binning is stated (100 ms slots, unbinned at 30 s)" grep -qF '100 ms slots, unbinned' "$work/sample.svg"
figure report_sample_svg_bytes "$(wc -c <"$work/sample.svg")"

# the same timeline written with spaces for tabs draws the same picture
copy_sample "$work/spaces"
for f in "$work/spaces"/*; do tr '\t' ' ' <"$f" >"$f.x" && mv "$f.x" "$f"; done
lua5.4 "$REPORT" "$work/spaces" "$work/spaces.html" --title "$title" --svg "$work/spaces.svg" 2>"$work/err"
check "space-separated files draw the same picture" cmp -s "$work/sample.svg" "$work/spaces.svg"

# a violation is red, and the verdict names it
copy_sample "$work/bad"
sed -i 's/^CHAOS duplicates 0$/CHAOS duplicates 3/' "$work/bad/figures.txt"
lua5.4 "$REPORT" "$work/bad" "$work/bad.html" 2>"$work/err"
check "a nonzero violation renders" test -s "$work/bad.html"
check "duplicates 3 is red" grep -qF '<tr class="bad"><th scope="row">duplicates</th><td>3</td></tr>' "$work/bad.html"
check "the verdict names it" grep -qF '<p class="verdict fail">VIOLATIONS: duplicates 3</p>' "$work/bad.html"

# ---- missing and empty files ---------------------------------------------------------------------
# fails_naming FILE: without FILE the sample fails with exit 1 and a message naming FILE, writing no page
fails_naming() {
	local d=$work/no-$1 rc=0
	copy_sample "$d" && rm -f "$d/$1"
	lua5.4 "$REPORT" "$d" "$d.html" 2>"$d.err" || rc=$?
	check "without $1: exit 1 (got $rc)" test "$rc" = 1
	check "without $1: the message names it ($(head -n 1 "$d.err"))" grep -qF "$1" "$d.err"
	check "without $1: no page" test ! -e "$d.html"
}
fails_naming slots.tsv
fails_naming figures.txt
rc=0
lua5.4 "$REPORT" "$work/no-such-dir" "$work/x.html" 2>"$work/err" || rc=$?
check "a missing directory: exit 1 (got $rc)" test "$rc" = 1
rc=0
lua5.4 "$REPORT" "$SAMPLE" 2>"$work/err" || rc=$?
check "bad usage: exit 2 and the usage line (got $rc)" test "$rc" = 2 -a -n "$(grep usage "$work/err")"
rc=0
lua5.4 "$REPORT" "$SAMPLE" "$work/no-dir/x.html" 2>"$work/err" || rc=$?
check "an unwritable output: exit 1 (got $rc: $(head -n 1 "$work/err"))" test "$rc" = 1

# optional_panels HOW: faults, VIPs and lease header-only or absent still give a page saying "no data"
optional_panels() {
	local how=$1 d=$work/opt-$1 f rc=0
	copy_sample "$d"
	for f in faults.tsv vips.tsv lease.tsv; do
		if [[ $how == header-only ]]; then head -n 1 "$d/$f" >"$d/$f.x" && mv "$d/$f.x" "$d/$f"; else rm "$d/$f"; fi
	done
	lua5.4 "$REPORT" "$d" "$d.html" 2>"$d.err" || rc=$?
	check "$how optional files: a page (exit $rc)" test "$rc" = 0 -a -s "$d.html"
	svg_part "$d.html" "$d.svg"
	check "$how optional files: the SVG is well-formed" xml_ok "$d.svg"
	local want="header only" n
	[[ $how == absent ]] && want=absent
	n=$(grep -cE "no data \((faults|vips|lease)\.tsv:? $want\)" "$d.svg")
	check "$how optional files: three panels say no data ($n)" test "$n" = 3
	check "$how optional files: the figures are still there" test "$(rows "$d.html" | wc -l)" = "$(wc -l <"$work/want.fig")"
	check "$how optional files: no band" test "$(count 'class="band' "$d.svg")" = 0
}
optional_panels header-only
optional_panels absent

# a header-only slots.tsv is a page with empty panels (the file is there: not an error)
copy_sample "$work/slots-empty"
head -n 1 "$SAMPLE/slots.tsv" >"$work/slots-empty/slots.tsv"
rc=0
lua5.4 "$REPORT" "$work/slots-empty" "$work/slots-empty.html" 2>"$work/err" || rc=$?
check "a header-only slots.tsv: a page saying no data (exit $rc)" \
	test "$rc" = 0 -a "$(count 'no data (slots.tsv: header only)' "$work/slots-empty.html")" = 2

# ---- 600 s: 6000 slots, 40 faults ----------------------------------------------------------------
mkdir -p "$work/soak"
lua5.4 "$GEN" soak "$work/soak" 600 40 || fatal "gen.lua writes the 600 s timeline"
check "the 600 s timeline has 6000 slots" test "$(($(wc -l <"$work/soak/slots.tsv") - 1))" = 6000
check "the 600 s timeline has 40 faults" test "$(($(wc -l <"$work/soak/faults.tsv") - 1))" = 40
t_start=$(ms_now)
lua5.4 "$REPORT" "$work/soak" "$work/soak.html" --svg "$work/soak.svg" 2>"$work/err"
rc=$?
t_ms=$(($(ms_now) - t_start))
check "the 600 s timeline renders (exit $rc)" test "$rc" = 0
size=$(wc -c <"$work/soak.svg")
figure report_600s_render_ms "$t_ms"
figure report_600s_svg_bytes "$size"
figure report_600s_html_bytes "$(wc -c <"$work/soak.html")"
check "the 600 s SVG is under 1.5 MB ($size bytes)" test "$size" -lt 1500000
check "the 600 s SVG is well-formed XML" xml_ok "$work/soak.svg"
check "the 600 s SVG has 40 bands" test "$(count 'class="band' "$work/soak.svg")" = 40
check "the 600 s timeline is binned (1 s bins of 10 slots)" grep -qF 'bins of 1 s (10 slots of 100 ms)' "$work/soak.svg"
check "the 600 s axis reads m:ss" grep -qF '>10:00</text>' "$work/soak.svg"

suite_done
