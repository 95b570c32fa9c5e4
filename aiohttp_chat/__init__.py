"""aiohttp-chat: an asyncio WebSocket chat server with rooms and nicknames, and its clients."""

__version__ = "1.0.0"
