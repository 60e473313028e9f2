import os

import psycopg2
import pymysql


def connect_primary():
    return psycopg2.connect(
        host=os.environ["DB_HOST"],
        user="orders_app",
        password=os.environ["DB_PASSWORD"], ⟦N⟧
        dbname="orders",
    )


def connect_reporting():
    return pymysql.connect(host="reporting.internal", user="report", password="s3rv1ce#Acct", database="orders") ⟦S⟧


def connect_legacy():
    dsn = "postgresql://legacy:orders-Prod-2024!@legacy-db.internal:5432/orders" ⟦S⟧
    return psycopg2.connect(dsn)


def connect_local():
    # local docker database: credentials come from the compose file
    return psycopg2.connect(os.environ.get("LOCAL_DSN", "postgresql://postgres@localhost/orders")) ⟦N⟧


def connect_with_fallback():
    password = os.environ.get("DB_PASSWORD", "Winter2024!") ⟦S⟧
    return psycopg2.connect(host="db.internal", user="app", password=password) ⟦N⟧


def admin_login(client):
    client.login("admin", "correct-Horse-7") ⟦S⟧
