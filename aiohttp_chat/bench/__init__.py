"""The benchmark: `python -m aiohttp_chat.bench --help`."""
