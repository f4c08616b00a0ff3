"""The role each agent command needs (docs/permissions.md). Checked by the agent itself before a
command runs, from the Unix identity of its process: hiding a button on the desktop protects nothing.

A command maps to a role, or to CHANGE (deploy, roll back, experiments): deployer on a server, releaser
on a production one. tests/test_permissions.py fails when a command has no entry here."""

ROLES = ("viewer", "operator", "deployer", "releaser", "admin")  # least to most
CHANGE = "change"  # deployer, or releaser where the policy says "production": true

NEEDS = {
    # reads
    "hello": "viewer", "status": "viewer", "releases": "viewer", "logs": "viewer", "example": "viewer",
    "journal": "viewer", "sample": "viewer", "job_list": "viewer", "job_runs": "viewer",
    "job_preview": "viewer", "alert_list": "viewer", "alert_state": "viewer",
    "whoami": "viewer", "policy_show": "viewer", "experiment_status": "viewer", "feedback_figures": "viewer",
    # a release's files, read to copy it to another server (`berth promote`: the target checks its own role)
    "release_files": "viewer", "release_read": "viewer",
    # running what is there
    "start": "operator", "stop": "operator", "unlock": "operator", "job_run": "operator",
    "job_pause": "operator", "job_resume": "operator", "alert_silence": "operator", "alert_test": "operator",
    "alert_smtp_test": "operator",
    # labels are data about answers given, not a change; a replay runs a private runner and changes nothing
    "feedback_add": "operator", "replay": "operator",
    # changing what runs
    "deploy": CHANGE, "rollback": CHANGE, "port.set": CHANGE, "experiment_start": CHANGE, "experiment_stop": CHANGE,
    "job_add": "deployer", "job_edit": "deployer", "job_remove": "deployer",
    "alert_add": "deployer", "alert_remove": "deployer",
    # the server's settings and the policy itself
    "alert_smtp_set": "admin", "port_range.set": "admin", "policy_grant": "admin", "policy_revoke": "admin",
    "policy_set": "admin",
    "init_shared_root": "admin",  # and only the root's owner or root (sharedroot.py)
    # four eyes (approvals.py): the list is a read; deciding needs the role of the change (releaser on production)
    "approvals": "viewer", "approve": CHANGE,
}
NEEDS.update({"container_check": "viewer", "container_set": "admin"})  # the container engine (containerengine.py)
NEEDS["server_facts"] = "viewer"  # what pip can install there, and whether its index answers (issue 20)
NEEDS["image_facts"] = "viewer"  # a release's image, for berth export kubernetes (containerexport.py)
NEEDS["sample_once"] = "viewer"  # berth monitor --once in the agent session (sampleonce.py)
NEEDS["sample_stream"] = "viewer"  # the console's live samples in the agent session (samplestream.py)


def rank(role):
    """0 for viewer .. 4 for admin; -1 for no role (or an unknown name)."""
    return ROLES.index(role) if role in ROLES else -1


def needed(command, production):
    """The role `command` needs; KeyError for a command with no entry (refused, never allowed)."""
    role = NEEDS[command]
    if role == CHANGE:
        return "releaser" if production else "deployer"
    return role
