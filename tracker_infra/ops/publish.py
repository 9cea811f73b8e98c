"""Publish a Vite build of the site to an environment's bucket, then invalidate its HTML.

  python render.py publish-site --env staging tests/browser/dist
  python render.py publish-site --env staging DIST --dry-run     # print the plan, touch nothing

Every file gets the Cache-Control the distribution's cache policies expect (vars frontend.cache):
content-hashed assets (assets/<name>-<hash>.<ext>, as Vite names them) `public, max-age=<assets>,
immutable`; HTML `public, max-age=<html>`; anything else `public, max-age=<default>`; and its
Content-Type. Everything that is not HTML is uploaded first and HTML last, so no page is ever
served that references an asset not uploaded yet. Nothing is deleted: clients still running the
previous release keep loading its assets (the bucket's lifecycle expires old versions). Then one
CloudFront invalidation of the HTML paths, `/` included, and a wait until it completes.
"""

from __future__ import annotations

import argparse
import mimetypes
import re
import time
from dataclasses import dataclass
from pathlib import Path

from ..errors import EXIT_AWS, EXIT_OK, EXIT_USER, UserError
from ..rendering import EDGE_REGION
from ..schema import Config
from .aws import add_env_arguments, load, required_outputs

# What each exit code means for this command (the codes: errors.EXIT_CODES, which --help shows).
EXITS = {
    EXIT_OK: "published",
    EXIT_USER: "no index.html in DIST, no such stack; nothing uploaded",
    EXIT_AWS: "the invalidation did not complete in time",
}

# Vite writes content-hashed files into assets/ as <name>-<hash>.<ext>, the hash 8 or more
# base64url characters.
HASHED_ASSET = re.compile(r"^assets/(?:.+/)?[^/]+-[A-Za-z0-9_-]{8,}\.[A-Za-z0-9]+$")

# Types a browser or CloudFront's compression depends on, whatever the machine's mime.types says.
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".map": "application/json",
    ".webmanifest": "application/manifest+json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".avif": "image/avif",
    ".ico": "image/x-icon",
    ".woff": "font/woff",
    ".woff2": "font/woff2",
    ".ttf": "font/ttf",
    ".otf": "font/otf",
    ".wasm": "application/wasm",
    ".txt": "text/plain; charset=utf-8",
    ".xml": "application/xml",
}

INVALIDATION_DELAY_SECONDS, INVALIDATION_ATTEMPTS = 10, 90  # up to 15 minutes


@dataclass(frozen=True)
class Upload:
    key: str
    path: Path
    content_type: str
    cache_control: str

    @property
    def is_html(self) -> bool:
        return self.key.endswith(".html")


def content_type(name: str) -> str:
    suffix = Path(name).suffix.lower()
    return CONTENT_TYPES.get(suffix) or mimetypes.guess_type(name)[0] or "application/octet-stream"


def cache_control(key: str, cfg: Config) -> str:
    cache = cfg.frontend.cache
    if key.endswith(".html"):
        return f"public, max-age={cache.html_seconds}"
    if HASHED_ASSET.match(key):
        return f"public, max-age={cache.assets_seconds}, immutable"
    return f"public, max-age={cache.default_seconds}"


def plan(dist: Path, cfg: Config) -> list[Upload]:
    """Every file of the build in upload order: non-HTML first, HTML last (index.html at the end)."""
    if not (dist / "index.html").is_file():
        raise UserError(str(dist), "index.html", "missing (allowed: a Vite build folder, e.g. the "
                        "dist/ of `vite build`, with index.html at its top); nothing uploaded")
    uploads = [Upload(key, path, content_type(key), cache_control(key, cfg))
               for path in sorted(p for p in dist.rglob("*") if p.is_file())
               for key in [path.relative_to(dist).as_posix()]]
    return sorted(uploads, key=lambda u: (u.is_html, u.key == "index.html", u.key))


def invalidation_paths(uploads: list[Upload]) -> list[str]:
    """`/` (served as index.html) and every HTML file's path."""
    return ["/", *(f"/{u.key}" for u in uploads if u.is_html)]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_env_arguments(parser)
    parser.add_argument("dist", type=Path, metavar="DIST", help="the Vite build folder (dist/)")
    parser.add_argument("--dry-run", action="store_true",
                        help="print what would be uploaded and invalidated; call nothing")


def run(args: argparse.Namespace) -> int:
    from .aws import connect

    cfg = load(args.vars, args.env)
    uploads = plan(args.dist, cfg)
    paths = invalidation_paths(uploads)
    if args.dry_run:
        for u in uploads:
            print(f"upload {u.key:<50} {u.content_type:<32} {u.cache_control}")
        print(f"invalidate {' '.join(paths)}")
        return 0
    started = time.perf_counter()
    aws = connect(cfg)
    bucket, distribution = required_outputs(aws.outputs(cfg.edge_stack_name, EDGE_REGION),
                                            cfg.edge_stack_name,
                                            ("FrontendBucketName", "DistributionId"), cfg.environment)
    s3 = aws.client("s3", EDGE_REGION)
    for u in uploads:
        s3.upload_file(str(u.path), bucket, u.key,
                       ExtraArgs={"ContentType": u.content_type, "CacheControl": u.cache_control})
    print(f"uploaded {len(uploads)} files to s3://{bucket} (HTML last; nothing deleted)")
    cloudfront = aws.client("cloudfront", EDGE_REGION)
    invalidation = cloudfront.create_invalidation(DistributionId=distribution, InvalidationBatch={
        "Paths": {"Quantity": len(paths), "Items": paths},
        "CallerReference": f"publish-site-{time.time_ns()}",
    })["Invalidation"]["Id"]
    print(f"invalidating {' '.join(paths)} on {distribution} ({invalidation})")
    from botocore.exceptions import WaiterError

    try:
        cloudfront.get_waiter("invalidation_completed").wait(
            DistributionId=distribution, Id=invalidation,
            WaiterConfig={"Delay": INVALIDATION_DELAY_SECONDS, "MaxAttempts": INVALIDATION_ATTEMPTS})
    except WaiterError as exc:
        print(f"invalidation {invalidation} did not complete: {exc}")
        return EXIT_AWS
    print(f"published {cfg.environment} in {time.perf_counter() - started:.1f} s")
    return 0
