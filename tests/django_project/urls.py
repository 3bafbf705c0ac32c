from django.urls import include, path

from . import views

api = [
    path("users/<int:user_id>/", views.user),
    path("search/", views.search),
]

urlpatterns = [
    path("api/", include(api)),
    path("login/", views.login),
    path("ping/<int:n>/", views.ping),
    path("plain/", views.plain),
    path("webhook/", views.webhook),
    path("form/", views.form),
    path("boom/", views.boom),
    path("token/", views.token),
    path("private/", views.private),
    path("export.csv", views.export_csv),
    path("export.json", views.export_json),
]
