# Baton's production image: the steps of README "Production install" (npm ci, npm run build, npm prune --omit=dev),
# then only what runs is copied into a slim image: package.json, node_modules (runtime dependencies), dist/, bin/ and
# the example workspace. CI checks the same install without Docker (.ci/production-install).
#
#   docker build -t baton .
#   docker run -p 8080:8080 -v baton-data:/data baton                                    # embedded store in /data
#   docker run -p 8080:8080 -v baton-keys:/data -e BATON_DATABASE_URL=postgres://… baton  # PostgreSQL

FROM node:20-bookworm-slim AS build
WORKDIR /app
# better-sqlite3 compiles its native module when no prebuilt binary matches the platform.
RUN apt-get update \
  && apt-get install -y --no-install-recommends python3 make g++ \
  && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
# Scripts off until the sources are in (the `prepare` script builds dist/); better-sqlite3's own build runs next.
RUN npm ci --ignore-scripts --no-audit --no-fund && npm rebuild better-sqlite3
COPY tsconfig.json tsconfig.build.json ./
COPY scripts ./scripts
COPY src ./src
RUN npm run build && npm prune --omit=dev --no-audit --no-fund

FROM node:20-bookworm-slim
ENV NODE_ENV=production \
    BATON_HOST=0.0.0.0 \
    BATON_PORT=8080 \
    BATON_DATA_DIR=/data
WORKDIR /app
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY bin ./bin
COPY examples ./examples
# The data directory holds the embedded store and, on every engine, the key files (secrets, audit signing): a volume.
RUN mkdir -p /data && chown node:node /data
USER node
VOLUME ["/data"]
EXPOSE 8080
# Liveness (/healthz): the process answers. Readiness (/readyz, 503 while the store is away) is for the load
# balancer; as a health check it would have an orchestrator replace nodes that recover on their own.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s \
  CMD ["node", "-e", "fetch('http://127.0.0.1:8080/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
CMD ["node", "dist/cli/main.js", "serve"]
