# quotecast image: the gateway as `npm start` runs it (TypeScript through tsx, no build step).
# Embedded mode by default; set REDIS_URL for cluster mode (see docker-compose.yml).
FROM node:20-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# Production dependencies only (tsx and esbuild are among them: the server and the dashboard bundle).
RUN npm ci --omit=dev --no-audit --no-fund

FROM node:20-bookworm-slim
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=8000
WORKDIR /app
COPY --from=deps --chown=node:node /app/node_modules ./node_modules
COPY --chown=node:node package.json tsconfig.json ./
COPY --chown=node:node src ./src
COPY --chown=node:node dashboard ./dashboard
USER node
EXPOSE 8000
# /health is 503 while draining or when Redis is unreachable (cluster mode).
HEALTHCHECK --interval=5s --timeout=3s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||8000)+'/health').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# SIGTERM: stop accepting, close connections with 1012 (sessions kept), exit.
STOPSIGNAL SIGTERM
CMD ["node", "--import", "tsx", "src/main.ts"]
