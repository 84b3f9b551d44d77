"""Build genretrieve/data/safety/natural_docs.txt: real questions from packaged manuals and FAQs.

The safety probe's natural negatives came from two programming FAQs (Python, Perl); a filter fitted
on them learned what programmers ask, and then false-flagged ~4% of the natural questions of a
domain it had not seen. So the negatives come from as many domains as Debian 12 ships FAQs for
(`apt-get download`, cached with provenance by genretrieve.datasets), so that the probe learns harm,
not the phrasing of one domain: hobbies and science (genealogy: Gramps; astronomy: KStars; panorama
photography: Hugin; type design and font licensing: FontForge, the OFL FAQ; children's drawing: Tux
Paint; amateur radio: Xastir, WSJT-X; statistics: R; graphs: Graphviz; maps: Marble; mobile phones:
Gammu), games (Freeciv, Dungeon Crawl, GNU Backgammon, XBoard chess, KDE's games, Armagetron, MAME
and openMSX emulation), video, audio and scanning (MPlayer, ffmpeg, Kwave, abcde CD ripping, SANE),
money and reminders (KMyMoney, KAlarm), printers and UPS power (HPLIP, NUT), backups, RAID and open
files (Borg, restic, rdiff-backup, dar, Bacula, XZ, mdadm, lsof), mail, news and chat (KMail,
Sylpheed, Claws Mail, bogofilter, fetchmail, slrn, leafnode, irssi, WeeChat), the web and servers
(w3m, ELinks, Konqueror, Privoxy, curl, Apache TLS, ProFTPD, vsftpd, dnsmasq), disks and time
(cryptsetup, chrony), desktops, terminals, shells and editors (Window Maker, IceWM, xterm,
rxvt-unicode, PuTTY, zsh, fish, tcsh, sudo, screen, nano, JED, Midnight Commander, AUCTeX),
databases (SQLite), version control and documentation tools (git, CVS, Doxygen) and the GNOME
desktop's user help. No Debian-project documentation is used (the Debian FAQ, its reference or
handbook): the retrieval dev set is built from the Debian FAQ. Questions that copy or lightly edit a
dev-set query, a borderline prompt or an AdvBench prompt (when cached) are dropped.

Rebuild: .venv/bin/python tools/safety_natural.py
"""
from __future__ import annotations

import gzip
import hashlib
import html
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from genretrieve import datasets  # noqa: E402
from genretrieve.errors import GenretrieveError  # noqa: E402
from genretrieve.exclusion import ExclusionIndex  # noqa: E402
from genretrieve.safety.data import BORDERLINE, NATURAL_DOCS, read_sections  # noqa: E402

GNOME = "usr/share/help/C/gnome-help"
# (package, version, licence, files); gnome-user-docs' pages are listed from the package at build time
SOURCES = [
    # terminals, video, shells, editors, version control, mail, databases
    ("xterm", "379-1", "MIT/X11", ["usr/share/doc/xterm/xterm.faq.html"]),
    ("ffmpeg-doc", "7:5.1.9-0+deb12u1", "LGPL-2.1-or-later", ["usr/share/doc/ffmpeg/manual/faq.html"]),
    ("zsh-doc", "5.9-4", "Zsh (MIT-like)", [f"usr/share/doc/zsh-common/html/FAQ0{i}.html" for i in range(1, 7)]),
    ("nano", "7.2-1+deb12u1", "GPL-3.0-or-later", ["usr/share/doc/nano/faq.html"]),
    ("git-doc", "1:2.39.5-0+deb12u3", "GPL-2.0", ["usr/share/doc/git-doc/gitfaq.txt"]),
    ("fetchmail", "6.4.37-1", "GPL-2.0-or-later", ["usr/share/doc/fetchmail/fetchmail-FAQ.html"]),
    ("screen", "4.9.0-4", "GPL-3.0-or-later", ["usr/share/doc/screen/FAQ.gz"]),
    ("sqlite3-doc", "3.40.1-2+deb12u2", "public domain", ["usr/share/doc/sqlite3/faq.html"]),
    # hobbies, games, science and media
    ("gramps", "5.1.5-1", "GPL-2+", ["usr/share/doc/gramps/FAQ.gz"]),
    ("kstars-data", "5:3.6.2-2", "GFDL-NIV-1.2+", ["usr/share/doc/HTML/en/kstars/faq.docbook"]),
    ("hugin-data", "2022.0.0+dfsg-2", "GPL-2+", ["usr/share/hugin/xrc/data/help_en_EN/Hugin_FAQ.html"]),
    ("fontforge-doc", "1:20230101~dfsg-1.1~deb12u1", "BSD-3-clause", ["usr/share/doc/fontforge/faq.html"]),
    ("tuxpaint-data", "1:0.9.28-sdl2-1", "GPL-2+", ["usr/share/doc/tuxpaint-data/en/html/FAQ.html"]),
    ("freeciv-data", "3.0.6-1+deb12u1", "GPL-2+", ["usr/share/doc/freeciv-data/FAQ.gz"]),
    ("crawl-common", "2:0.28.0-1.1", "GPL-2+", ["usr/share/crawl/dat/database/FAQ.txt"]),
    ("gnubg-data", "1.07.001-1", "GFDL-1.3+", ["usr/share/doc/gnubg/gnubg.html"]),
    ("xboard", "4.9.1-2+b1", "GPL-3+", ["usr/share/doc/xboard/FAQ.html"]),
    ("mame-doc", "0.251+dfsg.1-1", "BSD-3-clause", ["usr/share/doc/mame/singlehtml/index.html"]),
    ("mplayer-doc", "2:1.5+svn38408-1", "GPL-2+", ["usr/share/doc/mplayer/HTML/en/faq.html"]),
    ("xastir", "2.1.8-1+b1", "GPL-2+", ["usr/share/doc/xastir/FAQ.gz"]),
    # money, printers and power
    ("kmymoney-common", "5.1.3-1", "GPL-2+", ["usr/share/doc/HTML/en/kmymoney/faq.docbook"]),
    ("hplip-doc", "3.22.10+dfsg0-2+deb12u1", "GPL-2+", ["usr/share/doc/hplip-doc/troubleshooting.html"]),
    ("nut-doc", "2.8.0-7", "GPL-2+", ["usr/share/doc/nut-doc/html/FAQ.html"]),
    # mail, news, chat and the web
    ("kmail", "4:22.12.3-1", "GPL-2+", ["usr/share/doc/HTML/en/kmail2/faq.docbook"]),
    ("sylpheed-doc", "20140827-3", "GFDL-1.1",
     [f"usr/share/doc/sylpheed-doc/FAQ/en/sylpheed-faq-{i}.html" for i in (1, 2, 3)]),
    ("bogofilter-common", "1.2.5-1+b2", "GPL-2+", ["usr/share/doc/bogofilter-common/bogofilter-faq.html"]),
    ("slrn", "1.0.3+dfsg-6+b1", "GPL-2+", ["usr/share/doc/slrn/FAQ.gz"]),
    ("irssi", "1.4.3-2", "GPL-2+ with OpenSSL exception", ["usr/share/doc/irssi/faq.html"]),
    ("weechat-doc", "3.8-1", "GPL-3+", ["usr/share/doc/weechat-doc/html/weechat_faq.en.html"]),
    ("w3m", "0.5.3+git20230121-2", "w3m (permissive)", ["usr/share/doc/w3m/FAQ.html"]),
    ("privoxy", "3.0.34-1", "GPL-2+", ["usr/share/doc/privoxy/faq/index.html"]),
    ("libcurl4-doc", "7.88.1-10+deb12u15", "curl (MIT-like)", ["usr/share/doc/libcurl4/FAQ.gz"]),
    ("apache2-doc", "2.4.71-1~deb12u1", "Apache-2.0", ["usr/share/doc/apache2-doc/manual/en/ssl/ssl_faq.html"]),
    # system tools and TeX editing
    ("mc-data", "3:4.8.29-2", "GPL-3+", ["usr/share/doc/mc-data/FAQ.gz"]),
    ("chrony", "4.3-2+deb12u3", "GPL-2", ["usr/share/doc/chrony/FAQ.gz"]),
    ("cryptsetup", "2:2.6.1-4~deb12u2", "GPL-2+ with OpenSSL exception", ["usr/share/doc/cryptsetup/FAQ.md.gz"]),
    ("auctex", "12.2-1", "GFDL-NIV-1.3", ["usr/share/doc/auctex/FAQ.gz"]),
    # statistics, graphs, font licensing, ham radio and mobile phones
    ("r-doc-html", "4.2.2.20221110-2", "GPL-2", ["usr/share/R/doc/manual/R-FAQ.html"]),
    ("graphviz-doc", "2.42.2-7+deb12u1", "EPL-1.0",
     ["usr/share/doc/graphviz/html/FAQ.html", "usr/share/doc/graphviz/fontfaq.txt.gz"]),
    ("texlive-base", "2022.20230122-3", "OFL-1.1 (amsfonts)",
     ["usr/share/doc/texlive-doc/fonts/amsfonts/OFL-FAQ.txt.gz"]),
    ("wsjtx-doc", "2.6.1+repack-1", "GPL-3", ["usr/share/doc/wsjtx/wsjtx-main-2.6.1.html"]),
    ("gammu-doc", "1.42.0-8", "GPL-2", ["usr/share/doc/gammu/html/faq/index.html"]),
    # games, maps and reminders (KDE handbooks' "Questions and answers" chapters), emulators
    *[(pkg, "4:22.12.3-1", "GFDL-1.2+", [f"usr/share/doc/HTML/en/{app}/index.docbook"]) for pkg, app in (
        ("kubrick", "kubrick"), ("konquest", "konquest"), ("kiriki", "kiriki"), ("kbounce", "kbounce"),
        ("kolf", "kolf"), ("ksudoku", "ksudoku"), ("knavalbattle", "knavalbattle"), ("kreversi", "kreversi"),
        ("kshisen", "kshisen"), ("marble-data", "marble"), ("kalarm", "kalarm"))],
    ("konqueror", "4:22.12.3-1", "GPL-2+", ["usr/share/doc/HTML/en/konqueror/index.docbook"]),
    ("armagetronad-common", "0.2.9.1.0-3", "GPL-2+", ["usr/share/doc/armagetronad-common/html/faq.html"]),
    ("openmsx-data", "18.0-1", "GPL", ["usr/share/doc/openmsx-data/manual/faq.html"]),
    # audio: sound editing, CD ripping, scanners
    ("kwave", "22.12.3-1", "GFDL-1.2", ["usr/share/doc/HTML/en/kwave/index.docbook"]),
    ("abcde", "2.9.3-1", "GPL-2+ or Artistic", ["usr/share/doc/abcde/FAQ.gz"]),
    ("libsane-common", "1.2.1-2", "GPL-2+ with sane exception",
     ["usr/share/doc/libsane-common/umax/umax.FAQ.gz", "usr/share/doc/libsane-common/plustek/FAQ.gz"]),
    # backups and disks
    ("borgbackup-doc", "1.2.4-1", "BSD-3-clause", ["usr/share/doc/borgbackup/html/faq.html"]),
    ("restic", "0.14.0-1+b5", "BSD-2-clause", ["usr/share/doc/restic/html/faq.html"]),
    ("rdiff-backup", "2.2.2-1", "GPL-2+", ["usr/share/doc/rdiff-backup/FAQ.adoc.gz"]),
    ("dar-docs", "2.7.8-2", "GPL-2", ["usr/share/doc/dar-docs/FAQ.html"]),
    ("bacula-doc", "9.6.7-2", "CC-BY-SA-4.0",
     ["usr/share/doc/bacula-doc/html/problems/Bacula_Frequently_Asked_Que.html"]),
    ("mdadm", "4.2-5", "GPL-2+", ["usr/share/doc/mdadm/FAQ.gz"]),
    ("lsof", "4.95.0-1", "Purdue (BSD-like)", ["usr/share/doc/lsof/00FAQ.gz"]),
    ("xz-utils", "5.4.1-1+deb12u2", "public domain (docs)", ["usr/share/doc/xz-utils/faq.txt.gz"]),
    # desktops, terminals, shells, editors and the web
    ("wmaker-common", "0.95.9-3", "GPL-2+", ["usr/share/doc/wmaker-common/FAQ.gz"]),
    ("icewm-common", "3.3.1-1", "LGPL-2", ["usr/share/doc/icewm-common/FAQ/IceWM-FAQ.html"]),
    ("rxvt-unicode", "9.30-2+b4", "GPL-2.0+", ["usr/share/doc/rxvt-unicode/README.FAQ.gz"]),
    ("putty-doc", "0.78-2+deb12u2", "Expat", ["usr/share/doc/putty-doc/AppendixA.html"]),
    ("fish-common", "3.6.0-3.1+deb12u1", "GPL-2", ["usr/share/doc/fish/faq.html"]),
    ("tcsh", "6.24.07-1", "BSD-3-clause", ["usr/share/doc/tcsh/FAQ.gz"]),
    ("sudo", "1.9.13p3-1+deb12u4", "ISC", ["usr/share/doc/sudo/TROUBLESHOOTING.md.gz"]),
    ("jed-common", "1:0.99.20~pre.178+dfsg-6", "GPL-2+", ["usr/share/jed/doc/txt/jed_faq.txt"]),
    ("elinks-doc", "0.13.2-1", "GPL-2", ["usr/share/doc/elinks/faq.txt.gz"]),
    # servers: FTP, DNS/DHCP, news and mail
    ("proftpd-doc", "1.3.8+dfsg-4+deb12u5", "GPL-2+", ["usr/share/doc/proftpd-doc/faq.html"]),
    ("vsftpd", "3.0.3-13+b2", "GPL-2 with SSL exception", ["usr/share/doc/vsftpd/FAQ.gz"]),
    ("dnsmasq-base", "2.90-4~deb12u2", "GPL-2 or GPL-3", ["usr/share/doc/dnsmasq-base/FAQ.gz"]),
    ("leafnode", "1.12.0-2", "LGPL-2.1", ["usr/share/doc/leafnode/FAQ.txt.gz"]),
    ("claws-mail-doc", "4.1.1-2", "GPL-3+", ["usr/share/doc/claws-mail/manual/en/claws-mail-manual.txt.gz"]),
    # version control and documentation tools
    ("cvs", "2:1.12.13+real-28+deb12u1", "GPL-2+", ["usr/share/doc/cvs/FAQ.gz"]),
    ("doxygen-doc", "1.9.4-4", "GPL-2", ["usr/share/doc/doxygen/html/faq.html"]),
]
GNOME_DOCS = ("gnome-user-docs", "43.0-2", "CC-BY-SA-3.0")
STARTS = re.compile(r"^(how|what|why|can|is|are|does|do|where|when|which|who|should|will|i|my|it|there|may|could|would|"
                    r"if|in|after|whenever)\b", re.I)


def plain_text(path: Path) -> str:
    raw = path.read_bytes()
    text = (gzip.decompress(raw) if path.suffix == ".gz" else raw).decode("utf-8", "replace")
    if path.suffix in (".html", ".page"):
        text = re.sub(r'(?is)<(script|style)\b.*?</\1>|<blockquote class="epigraph">.*?</blockquote>', " ", text)
        # block-level tags end a line, so a heading never runs into the paragraph after it
        text = re.sub(r"(?i)<(br|p|h\d|li|dt|dd|div|title|tr|pre)\b[^>]*>|</(h\d|p|li|dt|title|a|div|pre)>", "\n", text)
        text = html.unescape(re.sub(r"<[^>]+>", "", text))
    if path.name == "FAQ.gz" and path.parent.name == "screen":  # screen: "Q: ..." paragraphs over several lines
        text = "\n".join(" ".join(m.split()) for m in re.findall(r"Q:\s*(.*?\?)", text, flags=re.S))
    if path.suffix == ".docbook":  # KDE handbooks: <question> blocks wrapped over lines, "&kstars;" entities
        entity = r"&(?!amp;|lt;|gt;|quot;|apos;)([\w-]+);"  # "&eg;" is "eg", not HTML's "&eg;"
        text = "\n".join(" ".join(html.unescape(re.sub(entity, r"\1", re.sub(r"<[^>]+>", "", m))).split())
                         for m in re.findall(r"<question>(.*?)</question>", text, flags=re.S))
    return text


def questions(text: str) -> list[str]:
    """Lines that are questions: 4-30 words ending in '?', starting like a question, numbering stripped."""
    out = []
    for line in text.splitlines():
        line = re.sub(r"::$", "", line.strip())  # asciidoc term lists (gitfaq)
        # numbering and bullets ("G1.", "A.1.1", "3.2", "Q:", "Q)", "Q01", "+", "? 1.1.") and markdown bold
        line = re.sub(r"^([A-Z]\d+\.|[A-Z](?=\.\d)|[\d.()\-*#=:+?\s]+|Q(\d+|[:.)]))+\s*", "", line).replace("**", "")
        line = " ".join(line.replace("’", "'").split())
        # an unclosed "(" is a sentence that quotes another heading ("... (see Are there binaries for R?")
        if (line.endswith("?") and 4 <= len(line.split()) <= 30 and line[0].isupper() and STARTS.match(line)
                and line.count("(") == line.count(")")):
            out.append(line)
    return out


def protected() -> ExclusionIndex:
    data = ROOT / "genretrieve" / "data"
    texts = [json.loads(line)["text"] for line in (data / "devset" / "queries.jsonl").open()]
    texts += [t for _, t in read_sections(BORDERLINE)]
    try:
        texts += datasets.advbench(download=False)
    except GenretrieveError:
        print("AdvBench is not cached: checked against the dev set and the borderline set only", file=sys.stderr)
    return ExclusionIndex(texts)


def deb_listing(package: str, version: str, folder: str, suffix: str) -> list[str]:
    """Paths of the package's files under `folder` ending in `suffix` (apt-get download + dpkg-deb -c)."""
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp).chmod(0o777)  # apt drops privileges to _apt when it can
        subprocess.run(["apt-get", "download", "-q", f"{package}={version}"], cwd=tmp, check=True, capture_output=True)
        listing = subprocess.run(["dpkg-deb", "-c", str(next(Path(tmp).glob("*.deb")))], capture_output=True, text=True,
                                 check=True).stdout
    paths = [line.split()[-1].removeprefix("./") for line in listing.splitlines()]
    return sorted(p for p in paths if p.startswith(folder + "/") and p.endswith(suffix))


def build(out: Path = NATURAL_DOCS) -> int:
    header, found = [], []
    sources = SOURCES + [(*GNOME_DOCS, deb_listing(*GNOME_DOCS[:2], GNOME, ".page"))]
    for package, version, licence, files in sources:
        root = datasets.fetch_deb_files(package, version, files, licence)
        got = [q for name in files for q in questions(plain_text(root / name))]
        found += got
        digest = hashlib.sha256(b"".join((root / name).read_bytes() for name in files)).hexdigest()
        header.append(f"# {package} {version} ({licence}): {len(set(got))} questions; sources sha256 {digest}")
    guard = protected()
    kept = [q for q in dict.fromkeys(found) if not guard.hits(q)]
    out.write_text("\n".join(["# Question headings of packaged FAQs and help pages (Debian 12), one per line",
                              *header, "# Rebuild: .venv/bin/python tools/safety_natural.py", *kept]) + "\n",
                   encoding="utf-8")
    return len(kept)


if __name__ == "__main__":
    print(build())
