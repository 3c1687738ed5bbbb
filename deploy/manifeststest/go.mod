module github.com/recsys/recsys/deploy/manifeststest

go 1.26.0

replace (
	github.com/recsys/recsys/gen => ../../gen
	github.com/recsys/recsys/libs => ../../libs
	github.com/recsys/recsys/services/featurecompute => ../../services/featurecompute
	github.com/recsys/recsys/services/feedback => ../../services/feedback
	github.com/recsys/recsys/services/ingest => ../../services/ingest
	github.com/recsys/recsys/services/itemfeatures => ../../services/itemfeatures
	github.com/recsys/recsys/services/ranking => ../../services/ranking
	github.com/recsys/recsys/services/trainer => ../../services/trainer
	github.com/recsys/recsys/services/userfeatures => ../../services/userfeatures
	github.com/recsys/recsys/services/web => ../../services/web
	google.golang.org/genproto => google.golang.org/genproto v0.0.0-20261026165753-2ffab32bce7e
)
