FROM python:3.11-slim
WORKDIR /app
ENV PYTHONUNBUFFERED=1 VAR_DIR=/data
COPY pyproject.toml constraints.txt README.md ./
COPY core core
COPY sandbox sandbox
COPY jobs jobs
COPY bot bot
COPY panel panel
COPY reelay reelay
RUN pip install --no-cache-dir uv && uv pip install --system --no-cache -c constraints.txt .
RUN useradd --create-home reelay && mkdir -p /data && chown reelay /data
USER reelay
VOLUME /data
EXPOSE 8000
CMD ["reelay", "run"]
