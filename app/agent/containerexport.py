"""What `berth export kubernetes` asks of the server about a release's image (the desktop writes the
manifests; docs/containers.md, "Kubernetes"): whether `berth/<model>:<version>` exists in the
server's engine, its id, size, user and labels, so the export refuses a release with no image, or
an image built from other content, instead of writing manifests a cluster cannot run. Read only."""
import json

from . import containerengine as engines
from .layout import check_name, check_version


def image_facts(ctx, req):
    """`image_facts`: {engine, image, exists, id, size, user, labels} of one release's image."""
    root = ctx.root.ensure()
    model, version = check_name(req.get("model")), check_version(req.get("version"))
    tag = engines.image_tag(model, version)
    path, kind = engines.find(root)
    out = {"engine": kind, "image": tag, "exists": False}
    if path is None:
        return dict(out, detail=engines.detect(root)["detail"])
    # `{{json .Id}}` fails on podman 4.3; the id and size are single words, the config one JSON object
    found = engines.inspect(path, tag, "{{.Id}} {{.Size}} {{json .Config}}")
    parts = found.split(" ", 2) if isinstance(found, str) else []
    try:
        config = json.loads(parts[2]) if len(parts) == 3 else None
        size = int(parts[1]) if len(parts) == 3 else None
    except ValueError:
        config = size = None
    if not isinstance(config, dict):
        if parts:
            return dict(out, detail="%s answered something unexpected about %s" % (kind, tag))
        found = engines.detect(root)  # no such image, or an engine this user cannot reach
        return dict(out, detail=("%s has no image %s" % (kind, tag)) if found["usable"] else found["detail"])
    labels = config.get("Labels")
    return dict(out, exists=True, id=parts[0], size=size, user=config.get("User") or "",
                labels=labels if isinstance(labels, dict) else {}, settings=engines.settings(root))


COMMANDS = {"image_facts": image_facts}
