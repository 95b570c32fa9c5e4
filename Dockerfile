# The chat server in a container. Build: docker build -t aiohttp-chat .
# Run:   docker run -p 8080:8080 aiohttp-chat   (options as AIOHTTP_CHAT_* variables, -e ...)
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml README.md ./
COPY aiohttp_chat ./aiohttp_chat
RUN pip install . && useradd --create-home --uid 10001 chat
USER chat

EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('AIOHTTP_CHAT_PORT', '8080'), timeout=2)"]
# The same command as everywhere else; it listens on 0.0.0.0:8080 unless told otherwise.
CMD ["python", "-m", "aiohttp_chat.server"]
