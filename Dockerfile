# Serving image: the gRPC server over a LanceDB table, ONNX Runtime only (no torch).
# Build:  docker build -t ssald .
# Run:    docker run -p 50051:50051 -v $PWD/ssald_demo:/data ssald
#         (expects /data/db from `ssald ingest` and /data/model.onnx from `ssald export`)
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
