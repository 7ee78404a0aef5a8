"""Write a local, git-ignored .env with a freshly generated development secret key (never committed)."""

import secrets
from pathlib import Path

path = Path(__file__).resolve().parent.parent / ".env"
if not path.exists():
    path.write_text(f"DJANGO_DEBUG=1\nDJANGO_SECRET_KEY={secrets.token_urlsafe(50)}\n")
    print(f"wrote {path} (development settings with a new secret key)")
