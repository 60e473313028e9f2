package com.example.orders;

import org.springframework.beans.factory.annotation.Value;

public class DbConfig {
    private static final String DB_URL = "jdbc:postgresql://orders-db.internal:5432/orders"; ⟦N⟧
    private static final String DB_USER = "orders_app"; ⟦N⟧
    private static final String DB_PASSWORD = "N0tS0Secret!"; ⟦S⟧
    private static final String API_KEY = "AIzaVD1_DbnHqCamLqxXcywT8TWT3r9LEyhCS9P"; ⟦S⟧
    private static final String SECRET_NAME = "prod/orders/db"; ⟦N⟧
    private static final int PASSWORD_MIN_LENGTH = 12; ⟦N⟧

    @Value("${db.password}") ⟦N⟧
    private String password; ⟦N⟧

    private final String apiToken = System.getenv("API_TOKEN"); ⟦N⟧

    public java.util.Properties props() {
        java.util.Properties p = new java.util.Properties();
        p.setProperty("user", DB_USER);
        p.setProperty("password", "orders-Prod-2024!"); ⟦S⟧
        p.setProperty("ssl", "true");
        return p;
    }

    public String legacyUrl() {
        return "jdbc:mysql://legacy.internal:3306/orders?user=legacy&password=Ld9k2Qm7vX"; ⟦S⟧
    }
}
