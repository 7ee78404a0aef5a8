app_name = "annotation"
urlpatterns = []
