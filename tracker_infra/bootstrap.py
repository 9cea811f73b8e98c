"""The per-account bootstrap stack: rendered/bootstrap/<account>.yaml from templates/bootstrap.yaml.j2.

One per AWS account named in vars/: GitHub's OIDC provider and, for each environment in that
account, the role `<project>-<env>-deploy` that the deploy workflow assumes (trusted only for
the repository's GitHub environments `<env>` and `<env>-plan`), with a policy limited to what
the environment's two stacks need. Deployed once by hand (docs/deploying.md); written by
`render.py --all`, kept fresh by `--check`, linted like the stacks.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from .output import check_template
from .rendering import jinja_environment
from .schema import Config


def bootstrap_files(configs: Iterable[Config], out_dir: Path) -> dict[Path, bytes]:
    """rendered/bootstrap/<account>.yaml for every account, checked like a stack template."""
    by_account: dict[str, list[Config]] = {}
    for cfg in configs:
        by_account.setdefault(cfg.account, []).append(cfg)
    template = jinja_environment().get_template("bootstrap.yaml.j2")
    files = {}
    for account, envs in sorted(by_account.items()):
        path = out_dir / "bootstrap" / f"{account}.yaml"
        text = template.render(account=account, envs=envs)
        check_template(text, str(path))
        files[path] = text.encode("utf-8")
    return files
