"""ivigmeta report: both files written, the HTML parses, holds every table and figure present and
makes no network request, the Markdown has the same tables, provenance and methods are right."""

from __future__ import annotations

import hashlib
import re
from html.parser import HTMLParser

import pytest
from conftest import ROOT, STUDIES

from ivigmeta import __version__

PUBLISHED = ROOT / "published.toml"
FIGURE_PARTS = {
    "pool": "Forest plot",
    "heterogeneity": "Radial (Galbraith) plot",
    "subgroup": "Subgroup forest plot",
    "loo": "Leave-one-out plot",
    "influence": "Baujat plot",
    "bias": "Funnel plot",
}


class Page(HTMLParser):
    """Collects headings, tables (with their h3 title), images and every src/href attribute."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[str] = []
        self.images: list[dict[str, str]] = []
        self.ids: list[str] = []
        self.tables: list[dict] = []
        self._h3: str | None = None
        self._text: list[str] | None = None
        self._last_h3 = ""
        self._row: list[str] | None = None
        self._cell: list[str] | None = None
        self.stack: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag not in ("meta", "img", "br", "link"):
            self.stack.append(tag)
        for key in ("src", "href"):
            if key in a:
                self.links.append(a[key] or "")
        if "id" in a:
            self.ids.append(a["id"])
        if tag == "img":
            self.images.append(a)
        elif tag == "h3":
            self._text = []
        elif tag == "h2":
            self._last_h3 = ""  # a table right under an h2 (provenance) has no section title
        elif tag == "table":
            self.tables.append({"title": self._last_h3, "rows": []})
        elif tag == "tr":
            self._row = []
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag):
        if self.stack and self.stack[-1] == tag:
            self.stack.pop()
        if tag == "h3" and self._text is not None:
            self._last_h3 = "".join(self._text).strip()
            self._text = None
        elif tag in ("td", "th") and self._cell is not None and self._row is not None:
            self._row.append("".join(self._cell).strip())
            self._cell = None
        elif tag == "tr" and self._row is not None and self.tables:
            self.tables[-1]["rows"].append(self._row)
            self._row = None

    def handle_data(self, data):
        if self._text is not None:
            self._text.append(data)
        if self._cell is not None:
            self._cell.append(data)


def markdown_tables(text: str) -> list[dict]:
    """Tables of the Markdown report: the ### title above each, and its rows (header included)."""
    tables, title, current = [], "", None
    for line in text.splitlines():
        if line.startswith("### "):
            title = re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", line[4:].strip())
        elif line.startswith("#"):
            title = ""
        if line.startswith("|"):
            cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip()[1:-1])]
            if all(re.fullmatch(r"-+:?", c) for c in cells):
                continue
            cells = [c[2:-2] if c.startswith("**") and c.endswith("**") else c for c in cells]
            cells = [c[1:-1] if c.startswith("`") and c.endswith("`") else c for c in cells]
            cells = [re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", c) for c in cells]
            if current is None:
                current = {"title": title, "rows": []}
                tables.append(current)
            current["rows"].append(cells)
        else:
            current = None
    return tables


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    from click.testing import CliRunner

    from ivigmeta.cli import cli

    out = tmp_path_factory.mktemp("report")
    result = CliRunner().invoke(
        cli,
        ["report", str(STUDIES), "-o", str(out), "--published", str(PUBLISHED)],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    html = (out / "report.html").read_text(encoding="utf-8")
    md = (out / "report.md").read_text(encoding="utf-8")
    page = Page()
    page.feed(html)
    page.close()
    return {"out": out, "result": result, "html": html, "md": md, "page": page}


def test_both_files_written_and_named_on_stdout(report):
    out = report["out"]
    assert report["result"].stdout.splitlines() == [
        str(out / "report.md"),
        str(out / "report.html"),
    ]
    assert report["html"].startswith("<!DOCTYPE html>")
    assert report["md"].startswith("# Meta-analysis report: studies.csv")


def test_html_parses_and_is_balanced(report):
    page = report["page"]
    assert page.stack == [], f"unclosed tags: {page.stack}"
    for section in (
        "data",
        "pool",
        "heterogeneity",
        "subgroup",
        "loo",
        "bias",
        "methods",
        "reproduce",
        "provenance",
    ):
        assert section in page.ids


def test_html_makes_no_network_request(report):
    page = report["page"]
    assert page.links, "the page has internal links at least"
    for link in page.links:
        assert not re.match(r"\s*(https?:)?//", link, re.I), link
        assert link.startswith(("#", "data:")), link
    assert "@import" not in report["html"] and "url(" not in report["html"]


def test_markdown_and_html_hold_the_same_tables(report):
    html_tables = [t for t in report["page"].tables if t["title"]]
    # the HTML numbers its tables in order ("Table 3. ..."); the Markdown keeps each command's
    # own output verbatim
    numbers = [int(re.match(r"Table (\d+)\. ", t["title"]).group(1)) for t in html_tables]
    assert numbers == list(range(1, len(html_tables) + 1))
    html_tables = [{**t, "title": re.sub(r"^Table \d+\. ", "", t["title"])} for t in html_tables]
    md_tables = markdown_tables(report["md"])
    md_named = [t for t in md_tables if t["title"]]
    assert [t["title"] for t in html_tables] == [t["title"] for t in md_named]
    for h, m in zip(html_tables, md_named):
        assert h["rows"] == m["rows"], h["title"]
    titles = " | ".join(t["title"] for t in html_tables)
    for expected in (
        "Data: ",
        "Outcomes of the included studies",
        "Heterogeneity",
        "Subgroup analysis by nk_criterion",
        "Subgroup analysis by timing",
        "Leave-one-out sensitivity analysis",
        "Small-study effects",
        "Printed numbers of: ",
    ):
        assert expected in titles


def test_tables_carry_the_commands_output(report, run):
    """Each section is the command's own Markdown output (run here independently)."""
    pool_md = run("pool", str(STUDIES), "--format", "markdown").stdout.strip()
    assert pool_md in report["md"]
    loo_md = run("loo", str(STUDIES), "--format", "markdown").stdout.strip()
    assert loo_md in report["md"]


def test_subgroups_default_to_every_label_column(report):
    assert "Subgroup analysis by nk_criterion" in report["md"]
    assert "Subgroup analysis by timing" in report["md"]
    assert "Subgroup analysis by treat_duration_mean" not in report["md"]


def test_figures_present_or_reported_missing(report):
    from ivigmeta.cli.reproduce import InProcessRunner

    plotting = set(InProcessRunner().plot_commands())
    images = {img.get("alt"): img["src"] for img in report["page"].images}
    from ivigmeta.cli import cli

    for command, title in FIGURE_PARTS.items():
        if command not in cli.commands:
            assert title not in report["html"]
            continue
        mine = {
            alt: src for alt, src in images.items() if alt == title or alt.startswith(f"{title} (")
        }
        if command in plotting:
            assert mine, title
            for alt, src in mine.items():
                assert src.startswith("data:image/png;base64,")
                link = re.search(rf"!\[{re.escape(alt)}\]\((figures/[^)]+\.png)\)", report["md"])
                assert link and (report["out"] / link.group(1)).is_file()
        else:
            assert not mine
            assert f"{title}: not available" in report["html"]
            assert f"*{title}: not available" in report["md"]
    if not plotting:
        assert "Figures are not available" in report["html"]
    assert len(images) == sum(1 for _ in re.finditer(r"!\[[^\]]*\]\(figures/", report["md"]))


def test_sections_of_missing_commands_are_listed(report):
    from ivigmeta.cli import cli

    for command, title in (
        ("influence", "Influence diagnostics"),
        ("cumulative", "Cumulative meta-analysis"),
    ):
        if command in cli.commands:
            assert f'id="{command}"' in report["html"]
        else:
            assert f"{title}: no `{command}` command" in report["md"]
            assert (
                f"{title}: no <code>" in report["html"]
                or f"{title}: no `{command}`" in report["html"]
            )


def test_provenance(report):
    digest = hashlib.sha256(STUDIES.read_bytes()).hexdigest()
    pub_digest = hashlib.sha256(PUBLISHED.read_bytes()).hexdigest()
    for text in (report["html"], report["md"]):
        assert digest in text and pub_digest in text
        assert f"ivigmeta {__version__}" in text
        assert re.search(r"20\d\d-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", text)
        assert "ivigmeta report " in text and str(report["out"]) in text
        for dep in ("click", "numpy", "Jinja2", "rich"):
            assert re.search(rf"<th>{dep}</th>|\| {dep} \|", text)


def test_reproduce_table_in_the_report(report):
    for text in (report["html"], report["md"]):
        assert re.search(r"\d+ of \d+ reproduce; 3 differ as expected", text)
        assert "Table 2, Ahmadi, RR" in text


def test_methods_paragraph_follows_the_options(run, tmp_path):
    default = ROOT / "studies.csv"
    result = run("report", str(default), "-o", str(tmp_path / "a"), "--no-figures")
    md = (tmp_path / "a" / "report.md").read_text()
    methods = md.split("\n## Methods", 1)[1].split("\n## ", 1)[0]
    assert (
        "risk ratio" in methods
        and "DerSimonian-Laird" in methods
        and "(DerSimonian & Laird 1986)" in methods
    )
    assert "applied to: Perricone" in methods and "Wald z intervals" in methods
    assert "Egger" in methods and "DerSimonian R, Laird N (1986)" in methods
    assert "Reproduction of the published numbers" not in md
    result = run(
        "report",
        str(default),
        "-o",
        str(tmp_path / "b"),
        "--ci",
        "hk",
        "--cc-policy",
        "all",
        "--by",
        "timing",
        "--no-figures",
    )
    assert result.exit_code == 0, result.output
    md = (tmp_path / "b" / "report.md").read_text()
    methods = md.split("\n## Methods", 1)[1].split("\n## ", 1)[0]
    assert (
        "Hartung-Knapp-Sidik-Jonkman intervals (Hartung & Knapp 2001; Sidik & Jonkman 2002)"
        in methods
    )
    assert "added to every study" in methods and "Subgroups (timing)" in methods
    assert "Subgroup analysis by nk_criterion" not in md
    assert "`ivigmeta pool " in md and "--ci hk" in md


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["-", "-o", "OUT"], "no data on standard input"),
        (["STUDIES", "-o", "FILE"], "exists and is not a directory"),
        (["STUDIES", "-o", "OUT", "--by", "dose"], "no column 'dose'"),
        (["STUDIES", "-o", "OUT", "--published", "MISSING"], "file not found"),
        (["nope.csv", "-o", "OUT"], "nope.csv: file not found"),
    ],
)
def test_report_errors(run, tmp_path, args, fragment):
    (tmp_path / "file.txt").write_text("x")
    subst = {
        "OUT": str(tmp_path / "out"),
        "FILE": str(tmp_path / "file.txt"),
        "STUDIES": str(STUDIES),
        "MISSING": str(tmp_path / "missing.toml"),
    }
    result = run("report", *[subst.get(a, a) for a in args])
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and fragment in lines[0]


def test_no_figures(run, tmp_path):
    result = run("report", str(STUDIES), "-o", str(tmp_path), "--no-figures")
    assert result.exit_code == 0
    html = (tmp_path / "report.html").read_text()
    assert "<img" not in html and "Forest plot: not available (--no-figures was given)" in html
    assert not (tmp_path / "figures").exists()


def test_output_directory_is_required(run):
    assert run("report", str(STUDIES)).exit_code == 2


def test_html_escapes_the_data(run, tmp_path):
    rows = (
        (ROOT / "studies.csv").read_text().replace("Ahmadi,", "Ahmadi <script>x</script> & co,", 1)
    )
    data = tmp_path / "studies.csv"
    data.write_text(rows)
    result = run("report", str(data), "-o", str(tmp_path / "out"), "--no-figures")
    assert result.exit_code == 0, result.output
    html = (tmp_path / "out" / "report.html").read_text()
    assert "<script>" not in html
    assert "Ahmadi &lt;script&gt;x&lt;/script&gt; &amp; co" in html
    page = Page()
    page.feed(html)
    assert page.stack == []


def test_input_options_reach_every_command(run, tmp_path):
    data = tmp_path / "semi.csv"
    data.write_text(
        "study;year;treat_events;treat_total;control_events;control_total;grp\n"
        "A;2000;10;20;5;20;x\nB;2001;12;20;6;20;x\nC;2002;8;20;7;20;y\nD;2003;9;20;3;20;y\n"
    )
    result = run(
        "report", str(data), "--sep", "semicolon", "-o", str(tmp_path / "out"), "--no-figures"
    )
    assert result.exit_code == 0, result.output
    md = (tmp_path / "out" / "report.md").read_text()
    assert "Subgroup analysis by grp" in md
    commands = re.findall(r"^`(ivigmeta \w+ .*)`$", md, re.M)
    assert len(commands) >= 5 and all("--sep semicolon" in c for c in commands)


@pytest.mark.parametrize(
    "table, args, present, absent",
    [
        (
            "study,m1i,sd1i,n1i,m2i,sd2i,n2i\na,10,2,20,9,2.5,22\nb,11,3,30,9.5,2,28\nc,9,2,25,9.2,2.2,24\n",
            ["--measure", "SMD"],
            ["standardized mean difference (Hedges' g) (Hedges 1981)", "Hedges LV (1981)"],
            ["continuity correction", "four cells"],
        ),
        (
            "study,xi,ni\na,0,20\nb,5,40\nc,12,30\n",
            ["--measure", "PFT"],
            [
                "Freeman-Tukey double-arcsine-transformed proportion",
                "Miller's inverse at the harmonic mean",
                "Miller JJ (1978)",
            ],
            ["continuity correction"],
        ),
        (
            "study,xi,ni\na,0,20\nb,5,40\nc,12,30\n",
            [],
            [
                "logit-transformed proportion",
                "back-transformed to proportions",
                "events and non-events of each study with no or only events (applied to: a)",
            ],
            ["four cells"],
        ),
        (
            "study,x1i,t1i,x2i,t2i\na,0,100,3,120\nb,4,200,8,210\nc,5,150,9,160\n",
            [],
            [
                "incidence rate ratio",
                "both event counts of each study with a zero count (applied to: a)",
            ],
            ["four cells"],
        ),
    ],
)
def test_methods_paragraph_describes_the_measure(run, tmp_path, table, args, present, absent):
    path = tmp_path / "t.csv"
    path.write_text(table)
    result = run("report", str(path), "-o", str(tmp_path / "r"), "--no-figures", *args)
    assert result.exit_code == 0, result.output
    md = (tmp_path / "r" / "report.md").read_text()
    methods = md.split("\n## Methods", 1)[1].split("\n## ", 1)[0]
    refs = md.split("\n## Methods", 1)[1]
    for text in present:
        assert text in refs, text
    for text in absent:
        assert text not in methods, text


def test_report_title_and_forest_labels(run, tmp_path, monkeypatch):
    from ivigmeta.plots import forest

    seen = []
    real = forest.forest_plot

    def spy(ma, model="random", labels=None, **options):
        seen.append(labels)
        return real(ma, model, labels, **options)

    monkeypatch.setattr(forest, "forest_plot", spy)
    monkeypatch.setitem(__import__("ivigmeta.plots", fromlist=["FIGURES"]).FIGURES, "forest", spy)
    result = run(
        "report", str(ROOT / "studies.csv"), "-o", str(tmp_path / "r"),
        "--title", "IVIG re-analysis", "--labels", "Favours no IVIG,Favours IVIG",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    md = (tmp_path / "r" / "report.md").read_text()
    assert md.startswith("# IVIG re-analysis\n")
    assert ("Favours no IVIG", "Favours IVIG") in [tuple(x) for x in seen if x]
    assert "## Study outcomes and pooled estimates" in md


def test_report_with_a_glmm_names_the_model(run, tmp_path):
    bcg = (
        "study,year,tpos,tneg,cpos,cneg,grp\n"
        "a,1948,4,119,11,128,x\nb,1949,6,300,29,274,x\nc,1960,3,228,11,209,y\n"
        "d,1977,62,13536,248,12619,y\ne,1973,33,5036,47,5761,x\n"
    )
    path = tmp_path / "bcg.csv"
    path.write_text(bcg)
    result = run(
        "report", str(path), "-o", str(tmp_path / "r"), "--no-figures", "--measure", "OR",
        "--glmm", "UM.FS",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    md = (tmp_path / "r" / "report.md").read_text()
    methods = md.split("\n## Methods", 1)[1]
    assert "generalized linear mixed model UM.FS" in methods
    assert "Stijnen T, Hamza TH, Ozdemir P (2010)" in methods
    assert "compared by Q between their estimates" in methods
    assert "### Leave-one-out sensitivity analysis (random effects, GLMM UM.FS)" in md
    assert "--glmm UM.FS" in md  # the command lines shown


def test_report_reads_standard_input(run, tmp_path):
    out = tmp_path / "rep"
    result = run("report", "-", "-o", str(out), "--no-figures", input=STUDIES.read_text())
    assert result.exit_code == 0, result.stderr
    assert (out / "input.csv").read_text() == STUDIES.read_text()
    assert "standard input saved as" in result.stderr
    assert "RR 1.98 [1.44, 2.73]" in (out / "report.md").read_text()


def test_html_numbers_figures_and_folds_the_reproduce_table(report):
    html = report["html"]
    captions = re.findall(r"<figcaption>Figure (\d+)\. ", html)
    assert captions and [int(c) for c in captions] == list(range(1, len(captions) + 1))
    assert "<details>" in html and "Every published number" in html
    assert "td:first-child, th:first-child { white-space: nowrap; }" in html


def test_model_options_reach_every_section(run, tmp_path):
    # --pi, --common-ci and --tau2-weights are stored on the context, not passed as values: the
    # report's sections used to run without them (a t-based prediction interval came out z).
    out = tmp_path / "r"
    result = run("report", str(STUDIES), "--pi", "t", "--no-figures", "-o", str(out))
    assert result.exit_code == 0, result.stderr
    md = (out / "report.md").read_text(encoding="utf-8")
    assert "`ivigmeta pool " in md and "--pi t`" in md
    pooled = run("pool", str(STUDIES), "--pi", "t").stdout
    line = next(x for x in pooled.splitlines() if x.startswith("Prediction interval"))
    assert line in md  # the same interval, "(t on 6 df)"
    assert "(t on 6 df)" in line
