CREATE USER 'orders'@'%' IDENTIFIED BY '8EGNN6m0taoU#'; ⟦S⟧
SET PASSWORD FOR 'report'@'%' = '22j4UotdJEwLO%'; ⟦S⟧
GRANT SELECT ON orders.* TO 'report'@'%';
