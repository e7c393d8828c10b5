from ninja import NinjaAPI

api = NinjaAPI(title="Komu API", version="1", urls_namespace="api")
