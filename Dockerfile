# nascli image: `nas` on Python 3.11 with torch's CUDA build, for the Kubernetes manifests in
# deploy/kubernetes and for `docker run`. Build from the repository root:
#   docker build -t registry.example.com/nascli:0.1.0 .
# CPU-only nodes (a ~1 GB image instead of several): add
#   --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
FROM python:3.11-slim

# Empty: torch and torchvision from PyPI, whose Linux x86_64 wheels are the CUDA build and pull
# the CUDA runtime, cuDNN and NCCL as nvidia-* wheels. The node needs only the NVIDIA driver and
# the container toolkit (the device plugin injects the driver libraries); no CUDA base image.
ARG TORCH_INDEX_URL=""

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    XDG_CACHE_HOME=/var/cache/nascli

# tini as PID 1: passes SIGTERM on (a worker then releases its task) and reaps children.
RUN apt-get update \
    && apt-get install -y --no-install-recommends tini \
    && rm -rf /var/lib/apt/lists/*

# torch first, in its own layer: the largest and the least often changed. Versions as in constraints.txt.
RUN pip install ${TORCH_INDEX_URL:+--index-url "$TORCH_INDEX_URL"} torch==2.14.1 torchvision==0.29.1

WORKDIR /opt/nascli
COPY pyproject.toml README.md constraints.txt ./
COPY nascli ./nascli
COPY presets ./presets
RUN pip install -c constraints.txt . && rm -rf /opt/nascli/build

# An unprivileged user with a fixed id (the manifests' runAsUser) and its own writable places.
RUN groupadd --gid 10001 nas \
    && useradd --uid 10001 --gid 10001 --create-home --home-dir /home/nas --shell /usr/sbin/nologin nas \
    && mkdir -p /var/cache/nascli \
    && chown nas:nas /var/cache/nascli
USER 10001:10001
WORKDIR /home/nas

ENTRYPOINT ["tini", "--", "nas"]
CMD ["--help"]
