"""What the tests share, one module per area; `tests/conftest.py` only registers them.

- `checks`: how a test compares what it was sent (`stamped`, `moved`, `exactly`, `eventually`).
- `network`: free ports, and waiting for one to listen.
- `needs`: the rule for a missing program (tmux, redis-server, Chromium): skipped here,
  a failure in CI.
- `peers`: chat clients as a test drives them (`Peer`, a hand-written `RawWebSocket`, bare
  aiohttp sockets).
- `servers`: a real server in this process (`client`, `connect`, cluster `node`s) or as a
  process of its own (`server_process`).
- `redis`, `redis_cluster`: a real redis-server, and a real three-master Redis Cluster (and
  `SlotMove`, one of its slots moved from master to master as an operator moves it).
- `processes`: `python -m ...` run to its end, and client processes driven line by line.
- `proxy`: a TCP proxy whose network a test can cut.
- `pages`: the chat page in real Chromium (`browser`, `serve`, `open_page`; the page itself
  as a test drives it is `tests/browser.py`'s `ChatPage`).
- `prometheus`: what /metrics shows, parsed as Prometheus does.
- `sockets`: real `ChatSocket`s served by a bare app, both ends in the test's hands, for
  the modules that take sockets rather than a server (`rooms.py`, `chat.py`).

Each fixture lives beside the helper it hands out, and `conftest.py` names the modules that
have fixtures in `pytest_plugins`: pytest then finds them as it finds a plugin's, with no
re-export of each fixture (an import that linters call unused, and that a new fixture can
be forgotten from), and a test imports the helpers it names from the module that has them.
"""
