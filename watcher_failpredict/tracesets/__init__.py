"""Real utilisation trace sets: where they live, what they are, and how the
project fetches and converts them (``watcher-failpredict traces``).

* :mod:`.location`: the one traces directory (``--traces DIR``, else
  ``$FAILPREDICT_TRACES``, else the user's cache) and the files shipped
  with the package;
* :mod:`.catalog`: each public set, its licence, citation and the
  publisher's files (pinned by sha256 where the publisher gives one);
* :mod:`.download`: resumable, verified HTTP downloads;
* :mod:`.convert`: the publishers' formats to the layout the loaders read;
* :mod:`.fetch`: download, verify, convert and install one set.
"""
