"""The review report: what a change does to each stack, dangers and security changes first.

Entry point: ``format_report(report, markdown)``. A ``Report`` is a list of ``StackChanges``, each a
list of ``ResourceChange`` (added, changed, removed; replacement verdict and why; property
changes) plus the stack's IAM statement and security-group rule changes and notes. ``render.py
diff`` fills it from two rendered templates (diff.py, replacement.py, security.py); anything else
that knows per-resource changes (a CloudFormation change set: action Add/Modify/Remove,
Replacement True/Conditional, the changed property paths) can fill the same classes and get the
same report.

The report, top to bottom:
1. the baseline (what is compared with what), one line;
2. the alarms: stateful resources replaced, deleted or moved to a replaced network; custom-named
   resources that need replacing ("CloudFormation will refuse this update"); irreversible
   changes; then what cannot be judged ("unknown", with its cause); then special notes (a new
   Lambda@Edge version, a removed environment);
3. security: a table of IAM statement changes and one of security-group rule changes, each
   widening marked;
4. one headline per stack (added / changed / replaced / removed), the same change to many
   resources as one line with the count, then each resource (in markdown, property-level detail
   collapsed in ``<details>``);
5. the cost change.
Markdown is kept under GitHub's comment limit (COMMENT_LIMIT), truncated with a note.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from ..terminal import clip, fit
from .values import MISSING, compact, show_change
from .widening import Widening

# Replacement verdicts, weakest to strongest.
NO, UNKNOWN, MAY, YES = "", "unknown", "may", "yes"

# Types that hold data which does not survive a delete or replacement.
STATEFUL_TYPES = frozenset({
    "AWS::RDS::DBCluster", "AWS::RDS::DBInstance", "AWS::RDS::GlobalCluster",
    "AWS::S3::Bucket", "AWS::SecretsManager::Secret", "AWS::KMS::Key", "AWS::Logs::LogGroup",
    "AWS::DynamoDB::Table", "AWS::DynamoDB::GlobalTable", "AWS::Serverless::SimpleTable",
    "AWS::EFS::FileSystem", "AWS::ECR::Repository", "AWS::Cognito::UserPool",
    "AWS::Backup::BackupVault", "AWS::ElastiCache::ReplicationGroup", "AWS::SQS::Queue",
    "AWS::Kinesis::Stream", "AWS::OpenSearchService::Domain",
})

COMMENT_LIMIT = 65_536 - 512  # GitHub refuses longer comments; room for the workflow's header
GROUP_MIN = 3  # the same property change on this many resources of a stack is shown once
FOLLOWS = ", which is replaced"  # the end of a replacement reason that follows a reference


@dataclass
class Change:
    path: str
    old: Any
    new: Any
    replaces: str = NO  # YES / MAY when this path is (conditionally) create-only


@dataclass
class ResourceChange:
    logical_id: str
    kind: str  # added, removed, changed
    type: str
    old_type: str = ""  # when the Type changed
    changes: list[Change] = field(default_factory=list)
    replacement: str = NO
    reason: str = ""
    deletion_policy: str = "Delete"
    update_replace_policy: str = "Delete"
    refused: str = ""  # why CloudFormation will refuse the update (a fixed custom name)
    moves: str = ""  # the replaced network resource it must move to
    irreversible: str = ""  # e.g. an engine major version upgrade
    effect: str = ""  # what else CloudFormation does to it (a new function version, ...)
    renamed_from: str = ""  # added: the removed resource it likely renames (same type, nearly same)

    @property
    def stateful(self) -> bool:
        return self.type in STATEFUL_TYPES or self.old_type in STATEFUL_TYPES

    @property
    def replaced(self) -> bool:
        return self.replacement in (YES, MAY)

    @property
    def data_at_risk(self) -> bool:
        """A stateful resource removed, replaced (possibly), or moved to a replaced network."""
        return self.stateful and (self.kind == "removed" or self.replaced or bool(self.moves))

    def verdict(self) -> str:
        if self.kind == "removed":
            kept = self.deletion_policy in ("Retain", "RetainExceptOnCreate")
            return (f"REMOVED from the stack; kept in the account by DeletionPolicy: "
                    f"{self.deletion_policy}" if kept else
                    f"DELETED by CloudFormation (DeletionPolicy: {self.deletion_policy})")
        if self.replaced:
            word = "REPLACED" if self.replacement == YES else "MAY BE REPLACED"
            return f"{word}: {self.reason} (UpdateReplacePolicy: {self.update_replace_policy})"
        if self.moves:
            return f"MUST MOVE TO A REPLACED NETWORK: {self.moves}"
        if self.replacement == UNKNOWN:
            return f"replacement unknown: {self.reason}"
        return ""


@dataclass(frozen=True)
class IamChange:
    sign: str  # + or -
    resource: str  # logical ID and where in it (e.g. "ApiTaskRole trust policy")
    effect: str
    actions: str
    resources: str
    principal: str
    condition: str
    widening: str = ""  # why this widens access ("new action", ...), else ""


@dataclass(frozen=True)
class Unjudged:
    """A changed security-bearing property that no rule judges (unjudged.py)."""

    logical_id: str
    type: str
    path: str
    old: Any
    new: Any


@dataclass(frozen=True)
class RuleChange:
    sign: str
    group: str
    direction: str  # ingress, egress
    ports: str  # "tcp 443", "all traffic"
    peer: str  # a group's logical ID, a CIDR, a prefix list
    widening: str = ""


@dataclass
class StackChanges:
    name: str  # <env>/<file>
    label: str = ""  # stack name and region
    status: str = "changed"  # added, removed, changed (the whole file)
    resources: list[ResourceChange] = field(default_factory=list)
    other: list[Change] = field(default_factory=list)  # sections besides Resources, package files
    notes: list[str] = field(default_factory=list)  # what the change does besides its resources
    iam: list[IamChange] = field(default_factory=list)
    rules: list[RuleChange] = field(default_factory=list)
    widenings: list[Widening] = field(default_factory=list)  # resources loosened (widening.py)
    unjudged: list[Unjudged] = field(default_factory=list)  # security-bearing, judged by no rule

    @property
    def empty(self) -> bool:
        return (self.status == "changed" and not self.resources and not self.other
                and not self.notes)

    def counts(self) -> dict[str, int]:
        return {"added": sum(r.kind == "added" for r in self.resources),
                "changed": sum(r.kind == "changed" and not r.replaced for r in self.resources),
                "replaced": sum(r.kind == "changed" and r.replaced for r in self.resources),
                "removed": sum(r.kind == "removed" for r in self.resources)}


@dataclass
class Report:
    baseline: str  # the first line: what is compared with what
    stacks: list[StackChanges] = field(default_factory=list)
    costs: list[str] = field(default_factory=list)  # formatted cost deltas
    notes: list[str] = field(default_factory=list)  # e.g. a removed environment

    def each(self) -> list[tuple[StackChanges, ResourceChange]]:
        return [(s, r) for s in self.stacks for r in s.resources]

    @property
    def data_at_risk(self) -> list[tuple[StackChanges, ResourceChange]]:
        return [(s, r) for s, r in self.each() if r.data_at_risk]

    @property
    def refused(self) -> list[tuple[StackChanges, ResourceChange]]:
        return [(s, r) for s, r in self.each() if r.refused]

    def _widened(self, security: bool) -> list[tuple[StackChanges, Widening]]:
        return [(s, w) for s in self.stacks for w in s.widenings if w.security == security]

    @property
    def security_widenings(self) -> list[tuple[StackChanges, Widening | IamChange | RuleChange]]:
        """Every change that exposes or weakens: resources (widening.py), IAM statements and
        security-group rules."""
        found: list[tuple[StackChanges, Widening | IamChange | RuleChange]] = list(self._widened(True))
        found += [(s, c) for s in self.stacks for c in [*s.iam, *s.rules] if c.widening]
        return found

    @property
    def data_widenings(self) -> list[tuple[StackChanges, Widening]]:
        """Every change that loosens data protection (deletion protection, retention, ...)."""
        return self._widened(False)

    @property
    def unjudged(self) -> list[tuple[StackChanges, Unjudged]]:
        """Every changed security-bearing property that no rule judges (unjudged.py)."""
        return [(s, u) for s in self.stacks for u in s.unjudged]

    @property
    def renames(self) -> list[tuple[StackChanges, ResourceChange]]:
        return [(s, r) for s, r in self.each() if r.renamed_from]


# --- formatting --------------------------------------------------------------------------------


def _code(text: str) -> str:
    fence = "``" if "`" in text else "`"
    pad = " " if "`" in text else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _cell(text: str) -> str:
    return _code(text.replace("|", "\\|")) if text else ""


class _Out:
    """Lines in text or markdown: the two formats differ in markup, not in content."""

    def __init__(self, markdown: bool, columns: int | None = None) -> None:
        self.md = markdown
        self.columns = columns  # text tables are fitted to this width (a terminal's), if given
        self.lines: list[str] = []

    def add(self, *lines: str) -> None:
        self.lines.extend(lines)

    def alarm(self, title: str, items: list[str], kind: str = "CAUTION") -> None:
        if not items:
            return
        lines = [(n > 0, line) for item in items for n, line in enumerate(item.split("\n"))]
        if self.md:
            self.add(f"> [!{kind}]", f"> **{title}**",
                     *[f">   - {line}" if sub else f"> - {line}" for sub, line in lines], "")
        else:
            mark = "!!" if kind == "CAUTION" else "--"
            self.add(f"{mark} {title}", *[f"{mark}       {line}" if sub else f"{mark}   {line}"
                                          for sub, line in lines])

    def table(self, title: str, header: list[str], rows: list[list[str]]) -> None:
        if not rows:
            return
        if self.md:
            self.add(f"#### {title}", "", "| " + " | ".join(header) + " |",
                     "|" + "---|" * len(header))
            self.add(*["| " + " | ".join(row) + " |" for row in rows], "")
            return
        widths = fit([max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)], self.columns)

        def line(cells: list[str]) -> str:
            return "  " + "  ".join(clip(c, w).ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

        self.add(f"{title}:", line(header), *[line(row) for row in rows], "")


def _where(s: StackChanges, r: ResourceChange, md: bool) -> str:
    return f"`{s.name}` **{r.logical_id}** ({r.type})" if md else f"{s.name} {r.logical_id} ({r.type})"


def _widening_line(s: StackChanges, w: Widening | IamChange | RuleChange, md: bool) -> str:
    """One widening as the head lists it: its category, where, why."""
    where = f"`{s.name}`" if md else s.name
    if isinstance(w, Widening):
        return f"WIDENS {w.category}: {where} {w.logical_id} ({w.type}): {w.reason}"
    if isinstance(w, IamChange):
        return f"WIDENS IAM: {where} {w.resource}: {w.widening} ({w.effect} {w.actions} on {w.resources})"
    return f"WIDENS security group: {where} {w.group} {w.direction} {w.ports} {w.peer}: {w.widening}"


def _rename_line(s: StackChanges, r: ResourceChange, md: bool) -> str:
    stateful = " Its data does not follow: the new resource starts empty." if r.stateful else ""
    return (f"{_where(s, r, md)}: likely a rename of {r.renamed_from}. CloudFormation creates "
            f"{r.logical_id} and deletes {r.renamed_from}.{stateful} To keep it: keep the logical ID "
            f"{r.renamed_from}, or move it with CloudFormation's stack refactoring")


# The head's order of harm: a stateful resource losing its data protection, then exposure (IAM,
# security groups and secrets in the clear open access too), then the rest.
EXPOSURE = ("exposure", "secrets")
DATA_LOST, EXPOSED, REST = range(3)
Flagged = Widening | IamChange | RuleChange


def _harm(w: Flagged) -> int:
    if not isinstance(w, Widening):
        return EXPOSED  # IAM and security groups
    if w.category == "data" and w.type in STATEFUL_TYPES:
        return DATA_LOST
    return EXPOSED if w.category in EXPOSURE else REST


def _owner(w: Flagged) -> str:
    return w.logical_id if isinstance(w, Widening) else w.resource.split()[0] if isinstance(
        w, IamChange) else w.group


def per_resource(found: list[tuple[StackChanges, Any]], line: Any, rank: Any = None) -> list[str]:
    """One item per resource (its first line, the rest below it), the most harmful first."""
    order: dict[tuple[str, str], list[str]] = {}
    ranks: dict[tuple[str, str], int] = {}
    for s, w in sorted(found, key=lambda sw: rank(sw[1]) if rank else 0):
        key = (s.name, _owner(w) if rank else w.logical_id)
        order.setdefault(key, []).append(line(s, w))
        ranks.setdefault(key, rank(w) if rank else 0)
    return ["\n".join(lines) for _, lines in sorted(order.items(), key=lambda kv: ranks[kv[0]])]


def _widened(report: Report, security_only: bool) -> list[tuple[StackChanges, Flagged]]:
    found: list[tuple[StackChanges, Flagged]] = list(report.security_widenings)
    return found if security_only else [*report.data_widenings, *found]


def _security_alarm(report: Report, out: _Out, security_only: bool = True) -> None:
    found = _widened(report, security_only)
    what = "widen security" if security_only else "widen security or loosen data protection"
    items = per_resource(found, lambda s, w: _widening_line(s, w, out.md), _harm)
    out.alarm(f"{len(found)} change(s) {what}, in {len(items)} resource(s), the most harmful first "
              "(data protection of stateful resources, exposure, then the rest):", items)


def _unjudged_line(s: StackChanges, u: Unjudged, md: bool) -> str:
    old, new = show_change(u.old, u.new)
    where = f"`{s.name}`" if md else s.name
    return f"NOT JUDGED: {where} {u.logical_id} ({u.type}): {u.path}: {old} -> {new}"


def _unjudged_alarm(report: Report, out: _Out) -> None:
    found = report.unjudged
    items = per_resource(found, lambda s, u: _unjudged_line(s, u, out.md))
    out.alarm(f"{len(found)} security-bearing change(s) in {len(items)} resource(s) that no rule "
              "judges (read them; --fail-on-unjudged fails on them):", items)


def _widening_alarms(report: Report, out: _Out) -> None:
    md = out.md
    _security_alarm(report, out, security_only=False)
    _unjudged_alarm(report, out)
    renames = report.renames
    out.alarm(f"{len(renames)} likely rename(s) of a logical ID:",
              [_rename_line(s, r, md) for s, r in renames])


def _alarms(report: Report, out: _Out) -> None:
    md = out.md
    _widening_alarms(report, out)
    at_risk = report.data_at_risk
    out.alarm(f"{len(at_risk)} stateful resource(s) replaced, deleted or moved to a replaced "
              "network: their data does not follow.",
              [f"{_where(s, r, md)}: {r.verdict()}" for s, r in at_risk])
    refused = report.refused
    out.alarm(f"CloudFormation will refuse this update: {len(refused)} custom-named resource(s) "
              "would need replacing.", [f"{_where(s, r, md)}: {r.refused}" for s, r in refused])
    out.alarm("Irreversible:", [f"{_where(s, r, md)}: {r.irreversible}"
                                for s, r in report.each() if r.irreversible])
    moving = [(s, r) for s, r in report.each() if r.moves and not r.stateful]
    out.alarm(f"{len(moving)} more resource(s) must move to a replaced network (updated in place "
              "only if the resource can change networks):",
              [f"{_where(s, r, md)}: {r.moves}" for s, r in moving])
    _notes(report, out)


def _notes(report: Report, out: _Out) -> None:
    """What cannot be judged, and what else the change does."""
    unknown = [(s, r) for s, r in report.each() if r.replacement == UNKNOWN]
    causes = Counter(r.reason for _, r in unknown)
    out.alarm(f"Unknown: whether {len(unknown)} resource(s) are replaced cannot be judged "
              "(the CloudFormation change set will say):",
              [f"{cause}: {n} resource(s)" for cause, n in sorted(causes.items())], "NOTE")
    notes = [*report.notes, *[f"`{s.name}`: {n}" if out.md else f"{s.name}: {n}"
                              for s in report.stacks for n in s.notes]]
    out.alarm("What else this change does:", notes, "IMPORTANT")


def _security(report: Report, out: _Out) -> None:
    def mark(widening: str) -> str:
        return (f"⚠️ **{widening}**" if out.md else f"WIDENS: {widening}") if widening else ""

    cell = _cell if out.md else (lambda text: text)
    iam = [[c.sign, cell(s.name), cell(c.resource), c.effect, cell(c.actions), cell(c.resources),
            cell(c.principal), cell(c.condition), mark(c.widening)]
           for s in report.stacks for c in s.iam]
    out.table("IAM statement changes", ["", "stack", "resource", "effect", "actions", "resources",
                                        "principal", "condition", "widening"], iam)
    rules = [[c.sign, cell(s.name), cell(c.group), c.direction, cell(c.ports), cell(c.peer),
              mark(c.widening)] for s in report.stacks for c in s.rules]
    out.table("Security-group rule changes", ["", "stack", "group", "direction",
                                              "protocol and ports", "peer", "widening"], rules)


_TAG_PATH = re.compile(
    r"^Properties\.Tags(?:\[Key=(?P<listed>.+?)\](?P<value>\.Value)?|\.(?P<mapped>[^.\[]+))$")


def _tag_value(value: Any, whole_item: bool) -> str:
    if whole_item:
        value = value.get("Value", MISSING) if isinstance(value, dict) else MISSING
    return compact(value)


def _key(c: Change) -> tuple[str, str, str]:
    """What makes two changes "the same change": path and values; a tag is the same tag whether
    the type writes Tags as a list of Key/Value items or as a mapping (SAM)."""
    match = _TAG_PATH.match(c.path)
    if match:
        whole = bool(match["listed"]) and not match["value"]
        return (f"tag {match['listed'] or match['mapped']}", _tag_value(c.old, whole),
                _tag_value(c.new, whole))
    return c.path, compact(c.old), compact(c.new)


def _change_line(c: Change, md: bool, indent: str) -> str:
    old, new = show_change(c.old, c.new)
    tag = {YES: "requires replacement", MAY: "may require replacement"}.get(c.replaces, "")
    if md:
        return f"{indent}- {_code(c.path)}: {_code(old)} → {_code(new)}" + (f" **({tag})**" if tag else "")
    return f"{indent}{c.path}: {old} -> {new}" + (f" ({tag})" if tag else "")


_MARK = {"added": "+", "removed": "-", "changed": "~"}


def _headline(s: StackChanges, out: _Out) -> None:
    summary = ", ".join(f"{n} {k}" for k, n in s.counts().items() if n) or "no resource changes"
    label = f" ({s.label})" if s.label else ""
    status = "" if s.status == "changed" else f" (file {s.status})"
    out.add(f"#### `{s.name}`{label}{status}: {summary}" if out.md else f"{s.name}{label}{status}: {summary}")


def _grouped(s: StackChanges, out: _Out) -> set[tuple[str, str, str]]:
    """The same change on many resources, one line with the count; the changes so shown."""
    seen: Counter[tuple[str, str, str]] = Counter()
    for r in s.resources:
        seen.update({_key(c) for c in r.changes if not c.replaces})
    grouped = {k for k, n in seen.items() if n >= GROUP_MIN}
    for key in sorted(grouped):
        path, old, new = key
        types = Counter(r.type for r in s.resources if any(_key(c) == key for c in r.changes))
        what = (", ".join(f"{t} ×{n}" for t, n in sorted(types.items())) if len(types) <= 3
                else f"{len(types)} types")
        out.add(f"- ~ **{seen[key]} resources**: {_code(path)}: {_code(old)} → {_code(new)} ({what})"
                if out.md else f"  ~ {seen[key]} resources: {path}: {old} -> {new} ({what})")
    return grouped


def _followers(s: StackChanges, grouped: set[tuple[str, str, str]], out: _Out) -> list[ResourceChange]:
    """Replaced only because what they reference is replaced (route tables of a new VPC, ...):
    one line naming them."""
    followers = [r for r in s.resources if r.replaced and r.reason.endswith(FOLLOWS)
                 and not r.stateful and not r.refused and all(_key(c) in grouped for c in r.changes)]
    if followers:
        names = ", ".join(r.logical_id for r in followers)
        what = f"{len(followers)} resources replaced because what they reference is replaced"
        out.add(f"- ~ **{what}**: {names}" if out.md else f"  ~ {what}: {names}")
    return followers


def _flag(r: ResourceChange) -> str:
    renamed = f"likely renamed from {r.renamed_from}" if r.renamed_from else ""
    return r.verdict() or ("CloudFormation will refuse this update" if r.refused else r.effect or renamed)


def _resource(r: ResourceChange, rest: list[Change], out: _Out, detail: list[str]) -> None:
    """One resource's line; its remaining property changes below it (collapsed in markdown)."""
    flag = _flag(r)
    type_text = f"{r.old_type} -> {r.type}" if r.old_type else r.type
    if not out.md:
        out.add(f"  {_MARK[r.kind]} {r.logical_id}  {type_text}" + (f"  {flag}" if flag else ""))
        out.add(*[_change_line(c, False, "      ") for c in rest])
        return
    head = f"- {_MARK[r.kind]} **{r.logical_id}** `{type_text}`" + (f" — **{flag}**" if flag else "")
    if flag or r.kind != "changed":
        out.add(head)
    if rest:
        detail += [head, *[_change_line(c, True, "  ") for c in rest]]


def _stack(s: StackChanges, out: _Out) -> None:
    _headline(s, out)
    grouped = _grouped(s, out)
    followers = _followers(s, grouped, out)
    detail: list[str] = []  # markdown: collapsed
    for r in s.resources:
        rest = [c for c in r.changes if _key(c) not in grouped]
        if (r.kind == "changed" and not rest and not _flag(r)) or r in followers:
            continue  # every change it has is on a grouped line
        _resource(r, rest, out, detail)
    other = [_change_line(c, out.md, "" if out.md else "    ") for c in s.other]
    if not out.md:
        out.add(*other, "")
        return
    detail += other
    if detail:
        out.add("", f"<details><summary>Property changes ({len(detail)} lines)</summary>", "",
                *detail, "", "</details>")
    out.add("")


def _stacks(report: Report, out: _Out) -> None:
    """The summary table (markdown), each stack's changes, then the cost."""
    stacks = [s for s in report.stacks if not s.empty]
    if out.md and stacks:
        out.table("Summary", ["stack", "", "added", "changed", "replaced", "removed"],
                  [[f"`{s.name}`", s.label, *[str(n) for n in s.counts().values()]] for s in stacks])
    if not stacks and not report.notes:
        out.add("No changes.", "")
    for s in stacks:
        _stack(s, out)
    if report.costs:
        out.add(*[c.rstrip("\n") + "\n" for c in report.costs])
    elif stacks:
        out.add("_Estimated monthly cost: unchanged._" if out.md else "Estimated monthly cost: unchanged.")


def format_security(report: Report, columns: int | None = None) -> str:
    """The report's security part alone, as text: what widens, then the IAM statement and
    security-group rule tables (what a deploy shows before it asks)."""
    out = _Out(False, columns)
    _security_alarm(report, out)
    _security(report, out)
    return "\n".join(out.lines).rstrip("\n") + "\n"


def format_report(report: Report, markdown: bool, limit: int = COMMENT_LIMIT,
                  columns: int | None = None) -> str:
    """The report as text (a terminal: tables fitted to ``columns``, cells clipped; the full text
    is in the markdown) or GitHub markdown (a PR comment, a job summary)."""
    out = _Out(markdown, None if markdown else columns)
    out.add(f"### {report.baseline}" if markdown else report.baseline, "")
    _alarms(report, out)
    if out.lines[-1]:
        out.add("")
    _security(report, out)
    _stacks(report, out)
    text = "\n".join(out.lines).rstrip("\n") + "\n"
    return _truncate(text, limit) if markdown else text


def _truncate(text: str, limit: int) -> str:
    """Markdown cut at a line boundary to ``limit`` characters, open <details> closed, with a note."""
    if len(text) <= limit:
        return text
    note = (f"\n\n_Truncated: the report is {len(text):,} characters, over GitHub's comment limit. "
            "The whole report is in the job summary, or run `render.py diff` locally._\n")
    kept = text[: limit - len(note) - 40].rsplit("\n", 1)[0]
    opened = kept.count("<details>") - kept.count("</details>")
    return kept + "\n\n</details>" * opened + note
