"""Developer aid: autogenerate a migration for a service. Usage: python tools_autogen.py reports "message" rev_id"""
import asyncio, sys, tempfile
from pathlib import Path
from alembic import command
from alembic.config import Config
from shared.db import create_engine, migrate

async def main(service: str, message: str, rev: str) -> None:
    loc = Path("services") / service / "adapters" / "migrations"
    db = Path(tempfile.mkdtemp()) / "x.db"
    engine = create_engine(f"sqlite+aiosqlite:///{db}")
    await migrate(engine, loc)
    def _gen(conn):
        cfg = Config(); cfg.set_main_option("script_location", str(loc)); cfg.attributes["connection"] = conn
        command.revision(cfg, message=message, autogenerate=True, rev_id=rev)
    async with engine.begin() as conn:
        await conn.run_sync(_gen)
    await engine.dispose()

asyncio.run(main(*sys.argv[1:]))
