"""Write a local, git-ignored .env for development: a fresh secret key and demo password (never committed)."""

import secrets
from pathlib import Path

path = Path(__file__).resolve().parent.parent / ".env"
current = path.read_text() if path.exists() else ""
wanted = {
    "DJANGO_DEBUG": "1",
    "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
    "DEMO_PASSWORD": "-".join(secrets.token_hex(3) for _ in range(3)),
}
missing = {k: v for k, v in wanted.items() if f"{k}=" not in current}
if missing:
    lines = current.rstrip("\n").splitlines() if current else []
    path.write_text("\n".join(lines + [f"{k}={v}" for k, v in missing.items()]) + "\n")
    print(f"wrote {', '.join(missing)} to {path}")
