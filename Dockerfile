FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY dashboard dashboard
COPY ippam ippam
COPY simcluster simcluster
RUN pip install .
COPY . .
RUN DEBUG=true python manage.py collectstatic --no-input -v 0
EXPOSE 8000
CMD ["gunicorn", "dashboard.wsgi:application", "--bind", "0.0.0.0:8000"]
