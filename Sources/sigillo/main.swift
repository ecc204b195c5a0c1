print("sigillo")
