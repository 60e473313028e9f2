import boto3

# temporary credentials pasted from the console while debugging
session = boto3.Session(
    aws_access_key_id="ASIA6JAG4K55VP2H5BPU", ⟦S⟧
    aws_secret_access_key="Bm6boVkgts6DgEOedC/kYIce6ovv2+iKQuZL4KzE", ⟦S⟧
    aws_session_token="IQoJb3JpZ2luX2VjERn042FsZq1Zy0bpSjZ49bFQIsRRQyciDfWOSNT1qiYc2u2hkwYVt15Wu6ix6uM7jME8fV9csev63MjI5wUzljlg7ZTUcsBEzabd6e4OLY0ebbbWx93hvj29ZQsG8gmG56xKcboMl2liley4cx6rW4WuQQSX9mDg5PWEndpMM9zFhg52MYj1M28uL0It0Yj6sccW0bw1h9fa2FIGzljbO8mhkDuqOTZL7kX6M9jKIWOycAh1uJwJuAzKxKStq8Y0louDEDMr8vAhgJZLb0Z8hOZ9hhzDDjLRU9adMsnAWtGJ5", ⟦S⟧
    region_name="us-east-1", ⟦N⟧
)

DEPLOY_KEY_ID = "AKIALDAEXE7UCQCYH2UK" ⟦S⟧
DEPLOY_KEY = "S6VQQlKnHN5dQ3iiIo/RE3eOtRz8A+7HrXe0RSK8" ⟦S⟧
DOCS_EXAMPLE_ROLE = "arn:aws:iam::123456789012:role/orders-api-role" ⟦N⟧
