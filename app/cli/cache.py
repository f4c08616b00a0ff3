"""`berth cache show` / `berth cache clear`: the wheels this computer keeps for offline servers
(app/deploy/wheelcache.py; its size limit is the setting wheel_cache_mb)."""
from __future__ import annotations

from app.formatting import human_bytes

from . import options
from .base import ActionGroup, workspace
from .output import print_json


class CacheGroup(ActionGroup):
    name = "cache"
    help = "the wheels kept here for offline servers (show, clear)"

    def add_actions(self, actions) -> None:
        a = actions.add_parser("show", help="where the wheel cache is, its size and limit, and its wheels")
        options.add_json(a)
        actions.add_parser("clear", help="remove every cached wheel (the next offline deploy downloads again)")

    def run(self, args) -> int:
        from app.deploy.wheelcache import from_settings

        ws = workspace()
        return self.dispatch(args, from_settings(ws.settings))

    def do_show(self, args, cache) -> int:
        wheels = [{"name": p.name, "size": p.stat().st_size} for p in cache.wheels()]
        total = sum(w["size"] for w in wheels)
        if args.json:
            print_json({"folder": str(cache.folder), "size": total, "limit": cache.limit_bytes, "wheels": wheels})
            return 0
        print(f"wheel cache: {cache.folder}\n{len(wheels)} wheel(s), {human_bytes(total)} of "
              f"{human_bytes(cache.limit_bytes)} (setting wheel_cache_mb)")
        for w in wheels:
            print(f"  {w['name']}  {human_bytes(w['size'])}")
        return 0

    def do_clear(self, args, cache) -> int:
        count, size = cache.clear()
        print(f"removed {count} wheel(s), {human_bytes(size)}, from {cache.folder}")
        return 0
