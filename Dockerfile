# Serving image: the gRPC server over a LanceDB table, ONNX Runtime only (no torch).
# Build:  docker build -t ssald .
# Run:    docker run -p 50051:50051 -v $PWD/ssald_demo:/data \
#           -v $PWD/ssald_token:/run/secrets/ssald_token:ro -e SSALD_TOKEN_FILE=/run/secrets/ssald_token ssald
#         (expects /data/db from `ssald ingest` and /data/model.onnx from `ssald export`; the token file holds
#         one secret, e.g. from `openssl rand -hex 32`; `-e SSALD_TOKEN=...` works too but shows in
#         `docker inspect`). The server listens on 0.0.0.0, so it refuses to start without a token; writes
#         (SubmitLabels) need it. For more, give the whole command after the image name (`... ssald ssald serve
#         --db /data/db ... --auth all`): --auth all (reads need the token too), --tls-cert/--tls-key (without
#         TLS the token crosses the network in clear text).
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY proto proto
COPY ssald_index ssald_index
COPY encoders encoders
COPY ingest ingest
COPY server server
COPY clients clients
# .[cpu]: the CPU build of ONNX Runtime (.[gpu] on a CUDA base image instead; never both).
RUN pip install --no-cache-dir ".[cpu]"
EXPOSE 50051
CMD ["ssald", "serve", "--db", "/data/db", "--model", "/data/model.onnx", "--host", "0.0.0.0", "--port", "50051"]
