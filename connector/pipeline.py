"""One job from a stored delivery to recorded drafts (filled in below)."""


def on_connection_restored(workspace_id: int) -> None:
    """Called after an admin (re)connects an accounting account: parked jobs resume."""
    from connector import worker

    worker.resume_waiting(workspace_id, "reconnect_needed")
