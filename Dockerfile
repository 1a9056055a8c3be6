# syntax=docker/dockerfile:1
# quotecast image: the compiled gateway (dist/main.js, `npm run build`) on production dependencies
# only. One stage; the install, the build and the prune are one RUN, so no layer of the image holds
# the dev dependencies (tsx, esbuild, TypeScript) or the sources they compiled. The files stay
# root's: the gateway (user node) only reads them.
# Embedded mode by default; set REDIS_URL for cluster mode (see docker-compose.yml).
# test/build/dockerfile.test.ts checks these steps and runs them outside Docker.
FROM node:20-bookworm-slim
WORKDIR /app
COPY package.json package-lock.json tsconfig.json ./
COPY scripts ./scripts
COPY src ./src
COPY dashboard ./dashboard
# npm's download cache is a BuildKit cache mount: reused across builds, never part of the image.
RUN --mount=type=cache,target=/root/.npm \
    npm ci --no-audit --no-fund \
 && npm run build:server \
 && npm prune --omit=dev --no-audit --no-fund \
 && rm -rf scripts src dashboard tsconfig.json
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=8000
USER node
EXPOSE 8000
# /health is 503 while draining or when Redis is unreachable (cluster mode).
HEALTHCHECK --interval=5s --timeout=3s --start-period=10s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||8000)+'/health').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# SIGTERM: stop accepting, close connections with 1012 (sessions kept), exit.
STOPSIGNAL SIGTERM
# The V8 flags of scripts/nodeFlags.ts, as `npm start` runs the gateway.
CMD ["node", "--heap-growing-percent=50", "dist/main.js"]
