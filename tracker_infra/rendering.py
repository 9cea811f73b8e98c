"""The Jinja environment, its filters, and the context each stack template sees.

Rules (docs/design.md "Rendering rules"): StrictUndefined, no autoescape, trim/lstrip blocks, trailing
newline kept; every interpolated value passes the ``yaml`` filter, which emits a YAML scalar that
cannot change the document's structure. One Environment per process; templates compile once.
"""

from __future__ import annotations

import io
import ipaddress
import json
import math
import os
import re
import tokenize
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2

from .dashboards import dashboard_body
from .schema import Config

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = ROOT / "templates"
PARTIALS = ROOT / "partials"
EDGE_SOURCE = ROOT / "edge" / "handler.py"
# The database rotation function's code folder beside the app template (its Code path, which
# sam deploy packages) and the files of partials/ it holds.
ROTATION_PACKAGE = "database-rotation"
ROTATION_FILES = ("database_rotation.py", "database_user.py", "postgres_login.py")
EDGE_REGION = "us-east-1"  # Lambda@Edge functions and CloudFront certificates live here

# Characters written as escapes rather than raw: those PyYAML refuses to read in a document, and
# the line breaks it would fold inside a quoted scalar (NEL, LINE/PARAGRAPH SEPARATOR). That is
# everything outside x20-x7e, xa0-u2027, u202a-ud7ff, ue000-ufffd and the astral planes, written
# as the short list it is (a negated class over all of Unicode takes milliseconds to compile).
_NOT_PRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff\ufffe\uffff]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def yaml_scalar(value: Any) -> str:
    """A value as one YAML scalar: strings double-quoted and escaped, numbers and booleans plain.

    JSON's string escapes are a subset of YAML's double-quoted escapes, so ``json.dumps`` does the
    quoting; characters YAML will not read raw are escaped on top.
    """
    if isinstance(value, jinja2.Undefined):
        str(value)  # StrictUndefined raises here, naming the missing variable
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        text = repr(value)
        if not math.isfinite(value) or "e" in text:
            raise ValueError(f"float {value!r} cannot be written as a plain YAML number")
        return text
    if isinstance(value, str):
        if value.isascii() and value.isprintable():  # most values: nothing to escape on top
            return json.dumps(value)
        return _NOT_PRINTABLE.sub(_escape, json.dumps(value, ensure_ascii=False))
    raise TypeError(f"the yaml filter takes str, int, float or bool, not {type(value).__name__}")


def logical_id(value: str) -> str:
    """A CloudFormation logical ID, checked: letters and digits only, so it is safe as a key."""
    if not re.fullmatch(r"[A-Za-z0-9]{1,255}", value):
        raise ValueError(f"{value!r} is not a CloudFormation logical ID")
    return value


class _BytecodeCache(jinja2.FileSystemBytecodeCache):
    """Compiled templates kept between processes (keyed by the template's path and name; its
    source checksum decides whether an entry is still good). Compiling is most of a cold render;
    a cache that cannot be read or written is simply not used. Each checkout (tests make many
    in temporary folders) adds entries, so a write that leaves more than KEEP entries removes the
    oldest."""

    KEEP = 256

    def load_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        try:
            super().load_bytecode(bucket)
        except (OSError, EOFError, ValueError):
            bucket.reset()

    def dump_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        try:
            super().dump_bytecode(bucket)
            with os.scandir(self.directory) as found:
                entries = [e for e in found if e.name.endswith(".cache")]
            if len(entries) > self.KEEP:
                entries.sort(key=lambda e: e.stat().st_mtime)
                for entry in entries[:len(entries) - self.KEEP]:
                    os.unlink(entry.path)
        except OSError:
            pass


def _bytecode_cache() -> jinja2.BytecodeCache | None:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    folder = os.path.join(base, "tracker-infra", f"jinja-{jinja2.__version__}")
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError:
        return None
    return _BytecodeCache(folder)


@lru_cache(maxsize=1)
def jinja_environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader([str(TEMPLATES), str(PARTIALS)]),
        undefined=jinja2.StrictUndefined,
        autoescape=False,  # noqa: S701 - the output is YAML, quoted by the yaml filter, not HTML
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        auto_reload=False,
        bytecode_cache=_bytecode_cache(),
    )
    env.filters["yaml"] = yaml_scalar
    env.filters["logical_id"] = logical_id
    env.globals["dashboard_body"] = dashboard_body  # JSON for !Sub, see dashboards.py
    env.globals["inline_code"] = inline_code
    env.globals["rotation_package"] = ROTATION_PACKAGE
    return env


def inline_code(name: str) -> str:
    """A function's source from partials/ (not a Jinja template) for a ZipFile, without its
    comments: inline code is limited to 4,096 characters (AWS::Lambda::Function Code, ZipFile), the
    source keeps its explanations. A line that held only a comment goes; the rest stays as it is."""
    source = (PARTIALS / name).read_text(encoding="utf-8")
    comments = {token.start[0]: token.start[1] for token in
                tokenize.generate_tokens(io.StringIO(source).readline) if token.type == tokenize.COMMENT}
    lines = [(line[:comments[n]].rstrip() if n in comments else line, n in comments)
             for n, line in enumerate(source.splitlines(), 1)]
    return "".join(f"{line}\n" for line, commented in lines if line or not commented)


@dataclass(frozen=True)
class Subnet:
    logical_id: str  # e.g. PublicSubnet1
    cidr: str
    az_index: int  # 0 or 1: !Select [az_index, !GetAZs ""]
    public: bool


def subnets(vpc_cidr: str) -> list[Subnet]:
    """The VPC split in four equal quarters: public AZ1, public AZ2, private AZ1, private AZ2."""
    quarters = list(ipaddress.IPv4Network(vpc_cidr).subnets(prefixlen_diff=2))
    return [
        Subnet("PublicSubnet1", str(quarters[0]), 0, True),
        Subnet("PublicSubnet2", str(quarters[1]), 1, True),
        Subnet("PrivateSubnet1", str(quarters[2]), 0, False),
        Subnet("PrivateSubnet2", str(quarters[3]), 1, False),
    ]


# Directives browsers ignore (and warn about) in a Content-Security-Policy-Report-Only header.
_NOT_IN_REPORT_ONLY = ("upgrade-insecure-requests", "block-all-mixed-content", "sandbox")


def content_security_policy(cfg: Config) -> str:
    """The CSP header value: the directives from vars, the API origin added to connect-src."""
    parts = []
    for directive, sources in cfg.frontend.content_security_policy.items():
        if cfg.frontend.csp_report_only and directive in _NOT_IN_REPORT_ONLY:
            continue
        if directive == "connect-src":
            sources = [*sources, f"https://{cfg.api.domain}"]
        parts.append(" ".join([directive, *sources]))
    return "; ".join(parts)


def edge_headers(cfg: Config) -> dict[str, str]:
    """The headers the edge function sets, as rendered into rendered/<env>/edge/headers.json."""
    csp_name = ("Content-Security-Policy-Report-Only" if cfg.frontend.csp_report_only
                else "Content-Security-Policy")
    return {**cfg.frontend.security_headers, csp_name: content_security_policy(cfg)}


@dataclass(frozen=True)
class Stack:
    key: str  # template stem: app, edge
    name: str  # CloudFormation stack name
    region: str
    output: str  # file name under rendered/<env>/


def stacks(cfg: Config) -> list[Stack]:
    """The two stacks of an environment (docs/design.md "Two stacks per environment")."""
    return [
        Stack("app", cfg.stack_name, cfg.region, "app.yaml"),
        Stack("edge", cfg.edge_stack_name, EDGE_REGION, "edge.yaml"),
    ]


def context(cfg: Config, stack: Stack) -> dict[str, Any]:
    return {
        "cfg": cfg,
        "env": cfg.environment,
        "stack": stack,
        "subnets": subnets(cfg.network.vpc_cidr),
        "api_origin": f"https://{cfg.api.domain}",
    }


def render_stack(cfg: Config, stack: Stack) -> str:
    """The stack's template rendered; a mistake in templates/ or partials/ is reported at its line
    (template_errors.TemplateError, exit 2)."""
    try:
        template = jinja_environment().get_template(f"{stack.key}.yaml.j2")
        return template.render(context(cfg, stack))
    except (jinja2.TemplateError, TypeError, ValueError, KeyError, AttributeError) as exc:
        from .template_errors import from_jinja

        error = from_jinja(exc)
        if error is None:
            raise
        raise error from None
