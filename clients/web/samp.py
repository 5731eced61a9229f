"""Send a table to TOPCAT, Aladin or any SAMP client through a running SAMP hub (``astropy.samp``).

The table travels by URL: the hub's clients are told ``table.load.votable`` with the URL of a VOTable
(the web app's own ``format=votable`` answer, or a file written by ``ssald candidates``), and load it
themselves. The hub is found the standard way: the ``SAMP_HUB`` environment variable, else
``~/.samp`` (TOPCAT and Aladin start one when none is running).
"""

from __future__ import annotations

import uuid

from clients.errors import SsaldError

__all__ = ["MTYPE", "send_table"]

#: The SAMP message type that asks a client to load a VOTable from a URL.
MTYPE = "table.load.votable"


def send_table(url: str, name: str) -> list[str]:
    """Ask every SAMP client subscribed to ``table.load.votable`` to load the VOTable at ``url``.

    Parameters
    ----------
    url : str
        Where the clients fetch the VOTable (``http://…`` or ``file://…``).
    name : str
        The table's name in TOPCAT's table list.

    Returns
    -------
    list of str
        The hub's ids of the clients the message went to.

    Raises
    ------
    SsaldError
        ``UNAVAILABLE`` when no hub is running, ``FAILED_PRECONDITION`` when no client on it loads tables.
    """
    from astropy.samp import SAMPHubError, SAMPIntegratedClient

    client = SAMPIntegratedClient(name="ssald", description="SSALD: similarity search for rare galaxies")
    try:
        client.connect(pool_size=1)
    except (SAMPHubError, OSError) as exc:
        raise SsaldError(
            f"no SAMP hub is running (start TOPCAT or Aladin, which run one): {exc}", "UNAVAILABLE"
        ) from None
    try:
        recipients = list(client.get_subscribed_clients(MTYPE))
        if not recipients:
            raise SsaldError(f"no client on the SAMP hub loads tables ({MTYPE}): start TOPCAT", "FAILED_PRECONDITION")
        params = {"url": url, "table-id": f"ssald-{uuid.uuid4().hex[:12]}", "name": name}
        for recipient in recipients:
            client.notify(recipient, {"samp.mtype": MTYPE, "samp.params": params})
        return recipients
    finally:
        client.disconnect()
