"""`berth server set-port MODEL PORT`: give a model another stable port, under the server lock and
journalled. A running model moves at once (its runner restarts on the new port: clients of the old
one must move anyway); a stopped one serves there at its next start."""
from . import endpoint, releases, supervise
from .layout import AgentError
from .operations import _start_healthy, audited


@audited("port.set")
def set_port(ctx, model, req):
    port = endpoint.check_port(req.get("port"))
    if not releases.list_releases(model):
        raise AgentError("%s is not deployed on this server; deploy it first (or give it `[serve] port = %d` in "
                         "its berth.toml)" % (model.name, port), "nothing_deployed")
    old = endpoint.stable_port(model)
    if old == port:
        return {"port": port, "previous_port": old, "detail": "%s already has port %d" % (model.name, port)}
    endpoint.check_free(ctx.root, model, port)
    version = model.current_version()
    running = version is not None and supervise.alive(supervise.record(model, version))
    endpoint.ensure(ctx.root, model, port, how="set")
    detail = "port %s -> %d" % (old or "none", port)
    if running:
        supervise.stop(model, version)
        info = releases.read_release(model, version) or {}
        _start_healthy(ctx, model, version, info.get("manifest") or {})
        detail += "; %s %s restarted on it" % (model.name, version)
    return {"port": port, "previous_port": old, "version": version, "detail": detail}
