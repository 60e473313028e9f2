class PartnerClient:
    def __init__(self, api_key=None, token_url="https://auth.partner.example.com/token"): ⟦N⟧
        self.api_key = api_key ⟦N⟧
        self.token_url = token_url ⟦N⟧
        self._token = None ⟦N⟧

    def headers(self):
        return {"x-api-key": self.api_key} ⟦N⟧


DEFAULT_CLIENT = PartnerClient(api_key="188d87b44489a39fc882cec24b770fa6a4c1d3d2") ⟦S⟧
